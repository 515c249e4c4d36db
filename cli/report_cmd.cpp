// `m4forge report DIR`: (re)writes the report of a run directory or of a
// train-many job's run root (report/run_report.h, report/job_report.h).
#include <iostream>

#include "cli/cli_common.h"
#include "core/error.h"
#include "report/job_report.h"
#include "report/run_report.h"
#include "task/run_record.h"

namespace m4::cli {

int run_report(int argc, char** argv) {
  cxxopts::Options o("m4forge report", "Writes DIR/report.html (self-contained: inline SVG charts, no scripts or network) for a\n"
                                       "run directory (`m4forge train --run-dir`) or a train-many run root, and prints its path.\n"
                                       "train, train-many and `eval --run` write it themselves; this rewrites it.");
  o.add_options()("dir", "a run directory or a train-many run root", cxxopts::value<std::string>());
  o.parse_positional({"dir"});
  o.positional_help("DIR");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  M4_CHECK(r.count("dir"), ErrorCode::kInvalidArgument, "m4forge report: give a run directory or a train-many run root");
  const std::filesystem::path dir = r["dir"].as<std::string>();
  M4_CHECK(std::filesystem::is_directory(dir), ErrorCode::kIo, dir.string(), ": no such directory");
  if (std::filesystem::exists(run_record_path(dir)) || !is_job_root(dir)) {
    const RunReport rep = write_run_report(dir);  // names run.json when it is missing
    for (const std::string& w : rep.warnings) std::cerr << "m4forge: warning: " << w << "\n";
    std::cout << rep.html.string() << "\n";
  } else {
    const JobReport rep = write_job_report(dir);
    std::cout << rep.html.string() << " (" << rep.tasks << " tasks, " << rep.failed << " failed)\n";
  }
  return 0;
}

}  // namespace m4::cli
