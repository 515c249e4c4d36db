// Running a library we cannot fix on input we do not trust, in a child
// process: a crash, a hang or a runaway allocation inside it (libhdf5 on a
// corrupt file, fuzz/README.md) becomes one m4::Error naming the input, and
// the calling process, its other work and its files are untouched.
#pragma once

#include <functional>
#include <string>

namespace m4 {

// Forks; the child runs `fn` (under an alarm of `timeout_s` seconds) and
// exits. Returns when `fn` returned in the child. Throws m4::Error:
//  - the child's own m4::Error (its code and message) when `fn` threw one;
//  - kBadInput "<where>: <what> crashed (signal N, NAME) ..." when it died;
//  - kBadInput "<where>: <what> did not finish in T s ..." when the alarm rang.
// `fn` must not depend on other threads of the caller (a forked child has one).
void run_isolated(const std::function<void()>& fn, int timeout_s, const std::string& where, const std::string& what);

}  // namespace m4
