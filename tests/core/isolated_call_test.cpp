// run_isolated: what a child's return, m4::Error, crash and hang become in the caller.
#include "core/isolated_call.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "core/error.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

TEST(IsolatedCall, ReturnsErrorsCrashesAndHangsBecomeOneLine) {
  run_isolated([] {}, 5, "f.h5", "the decoder");
  try {
    run_isolated([] { M4_FAIL(ErrorCode::kMismatch, "f.h5: labels out of range"); }, 5, "f.h5", "the decoder");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMismatch);
    EXPECT_STREQ(e.what(), "f.h5: labels out of range");
  }
  test::expect_error([] { run_isolated([] { ::raise(SIGSEGV); }, 5, "f.h5", "the decoder"); },
                     {"f.h5: the decoder crashed (signal 11, SIGSEGV) on this file"});
  test::expect_error([] { run_isolated([] { ::abort(); }, 5, "f.h5", "the decoder"); }, {"signal 6, SIGABRT"});
  test::expect_error([] { run_isolated([] { for (volatile int i = 0;; i = i + 1) {} }, 1, "f.h5", "the decoder"); },
                     {"f.h5: the decoder did not finish in 1 s"});
  // The caller's state is untouched by what the child did.
  int x = 1;
  run_isolated([&] { x = 2; }, 5, "f", "w");
  EXPECT_EQ(x, 1);
}

}  // namespace
}  // namespace m4
