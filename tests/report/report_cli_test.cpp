// `m4forge report DIR`: a run directory, a job's run root, and one-line
// errors for what is neither.
#include <fstream>

#include "core/atomic_file.h"
#include "tests/support/cli_test.h"

namespace m4::test {
namespace {

class ReportCli : public CliTest {};

TEST_F(ReportCli, WritesAJobsReportAndRefusesWhatIsNotARun) {
  std::ofstream(tmp_ / "job-rank0.jsonl") << "{\"task\": \"a\", \"status\": \"failed\", \"error\": \"x\"}\n";
  const CliRun job = m4({"report", tmp_.path().string()});
  ASSERT_EQ(job.code, 0) << job.err;
  EXPECT_EQ(job.out, (tmp_ / "report.html").string() + " (1 tasks, 1 failed)\n");
  EXPECT_NE(read_text_file(tmp_ / "report.html").find("<td class=\"failed\">failed</td>"), std::string::npos);

  std::filesystem::create_directories(tmp_ / "empty");
  expect_one_line_error(m4({"report", (tmp_ / "empty").string()}), {"empty/run.json", "no run record"});
  expect_one_line_error(m4({"report", (tmp_ / "nowhere").string()}), {"nowhere", "no such directory"});
  expect_one_line_error(m4({"report"}), {"give a run directory"});
  std::filesystem::create_directories(tmp_ / "bad");
  std::ofstream(tmp_ / "bad" / "run.json") << "{\"format\": \"m4forge-run/1\"";
  expect_one_line_error(m4({"report", (tmp_ / "bad").string()}), {"bad/run.json", "not valid JSON"});
}

}  // namespace
}  // namespace m4::test
