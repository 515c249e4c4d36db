// report.html of a train-many job, from every rank's log.
#include "report/job_report.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"
#include "report/run_report.h"
#include "report/svg_chart.h"
#include "task/run_record.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace m4 {
namespace {

constexpr uint64_t kMaxLogBytes = 64ULL << 20;

std::vector<fs::path> rank_logs(const fs::path& dir) {
  static const std::regex name(R"(job-rank[0-9]+\.jsonl)");
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (std::regex_match(e.path().filename().string(), name)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string h(std::string_view s) { return xml_escape(s); }

}  // namespace

bool is_job_root(const fs::path& dir) { return !rank_logs(dir).empty(); }

JobReport write_job_report(const fs::path& run_root, const std::vector<std::string>& task_names) {
  // Ranks write this page as their tasks end. Each logs its line before it
  // takes the lock, so whoever writes last has read every line: the page the
  // job leaves is complete.
  const fs::path lock_file = run_root / ".report.lock";
  const int lock = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  M4_CHECK(lock >= 0, ErrorCode::kIo, lock_file.string(), ": cannot open: ", std::strerror(errno));
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{lock};
  ::flock(lock, LOCK_EX);
  std::vector<std::string> order = task_names;
  std::map<std::string, json> last;  // task -> its last logged line
  size_t bad = 0;
  for (const fs::path& log : rank_logs(run_root)) {
    for_each_json_line(log, kMaxLogBytes, "job log", [&](int64_t, const json& j) {
      if (!j.is_object() || !j.contains("task") || !j["task"].is_string()) {
        ++bad;
        return;
      }
      const std::string t = j["task"].get<std::string>();
      if (task_names.empty() && !last.count(t)) order.push_back(t);
      last[t] = j;
    });
  }
  JobReport out;
  std::string page = report_page_head("m4forge job report: " + run_root.filename().string());
  const std::string name = fs::absolute(run_root).lexically_normal().filename().string();
  page += "<body>\n<h1>Job report: " + h(name) + "</h1>\n";
  std::string rows;
  std::map<std::string, size_t> by_status;
  for (const std::string& t : order) {
    ++out.tasks;
    const auto it = last.find(t);
    const json& j = it == last.end() ? json::object() : it->second;
    const std::string status = json_or(j, "status", std::string("pending"));
    ++by_status[status];
    if (status == "failed") ++out.failed;
    std::string metrics;
    if (j.contains("metrics") && j["metrics"].is_object()) {
      for (const auto& [m, v] : j["metrics"].items()) {
        if (v.is_number())
          metrics += (metrics.empty() ? "" : ", ") + h(m) + " " + format_metric(m, v.get<double>());
      }
    }
    const bool has_report = fs::exists(run_root / t / runkeys::kReportFile);
    const std::string link = has_report ? "<a href=\"" + h(t) + "/" + runkeys::kReportFile + "\">" + h(t) + "</a>" : h(t);
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", json_or(j, "seconds", 0.0));
    rows += "<tr><td>" + link + "</td><td class=\"" + h(status) + "\">" + h(status) + "</td><td>" + metrics + "</td><td class=\"num\">" +
            std::to_string(json_or(j, "steps", int64_t{0})) + "</td><td class=\"num\">" + (it == last.end() ? "" : secs) +
            "</td><td class=\"num\">" + (it == last.end() ? "" : std::to_string(json_or(j, "rank", 0))) + "</td><td>" +
            h(json_or(j, "error", std::string())) + "</td></tr>\n";
  }
  std::string counts;
  for (const auto& [s, n] : by_status) counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + h(s);
  page += "<p class=\"sub\">" + std::to_string(out.tasks) + " tasks: " + (counts.empty() ? "none logged yet" : counts) + "</p>\n";
  page += "<table class=\"tasks\">\n<tr><th>task</th><th>status</th><th>metric</th><th>steps</th><th>seconds</th><th>rank</th><th>error</th></tr>\n" +
          rows + "</table>\n";
  if (bad) page += "<ul class=\"warnings\"><li>" + std::to_string(bad) + " log line(s) that are not task rows skipped</li></ul>\n";
  page += "</body>\n</html>\n";
  out.html = run_root / runkeys::kReportFile;
  write_file_atomic(out.html, page);
  return out;
}

}  // namespace m4
