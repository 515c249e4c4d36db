// report.html of one run: the record's summary, the evaluation table, the curves.
#include "report/run_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"
#include "report/svg_chart.h"
#include "task/run_record.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace m4 {
namespace {

using Points = std::vector<std::pair<double, double>>;

struct EvalPoint {
  int64_t step = 0;
  std::string metric;
  double value = 0;
  int64_t samples = 0;
};

struct Curves {
  Points loss, lr, samples_per_s;
  std::vector<EvalPoint> evals;
};

// The rows of metrics.jsonl. A row that is not one (a line cut by a kill, a
// hand edit) is skipped and named in the warnings, never fatal: the report
// shows what there is.
Curves read_curves(const fs::path& file, std::vector<std::string>* warnings) {
  Curves c;
  if (!fs::exists(file)) return c;
  int64_t skipped = 0, first_bad = 0;
  for_each_json_line(file, reportfiles::kMaxMetricsBytes, "metrics file", [&](int64_t line_no, const json& j) {
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) {
      if (skipped++ == 0) first_bad = line_no;
      return;
    }
    const auto step = j["step"].get<int64_t>();
    auto num = [&](const char* k, Points* out) {
      if (j.contains(k) && j[k].is_number()) out->emplace_back(static_cast<double>(step), j[k].get<double>());
    };
    num("loss", &c.loss);
    num("lr", &c.lr);
    num("samples_per_s", &c.samples_per_s);
    for (const auto& [k, v] : j.items()) {
      if (k.rfind("eval_", 0) != 0 || k == "eval_samples" || !v.is_number()) continue;
      c.evals.push_back({step, k.substr(5), v.get<double>(), json_or(j, "eval_samples", int64_t{0})});
    }
  });
  if (skipped)
    warnings->push_back(file.filename().string() + ": " + std::to_string(skipped) +
                        " line(s) that are not metrics rows skipped (first: line " + std::to_string(first_bad) + ")");
  return c;
}

// Every `m4forge eval --run` of this run, oldest first.
std::vector<json> read_evals(const fs::path& file, std::vector<std::string>* warnings) {
  std::vector<json> out;
  if (!fs::exists(file)) return out;
  for_each_json_line(file, reportfiles::kMaxEvalsBytes, "evaluations file", [&](int64_t line_no, const json& j) {
    if (j.is_object()) {
      out.push_back(j);
    } else {
      warnings->push_back(file.filename().string() + ": line " + std::to_string(line_no) + " is not an evaluation row (skipped)");
    }
  });
  return out;
}

std::string h(std::string_view s) { return xml_escape(s); }

std::string grouped(int64_t n) {  // 1234567 -> "1,234,567"
  std::string d = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string fixed(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string bytes_text(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return (u ? fixed(v, 1) + " " + units[u] + " (" + grouped(static_cast<int64_t>(n)) + " bytes)" : grouped(static_cast<int64_t>(n)) + " bytes");
}

std::string duration_text(int64_t s) {
  if (s < 0) return "?";
  char b[64];
  if (s >= 3600) {
    std::snprintf(b, sizeof b, "%lldh %02lldm %02llds", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60),
                  static_cast<long long>(s % 60));
  } else if (s >= 60) {
    std::snprintf(b, sizeof b, "%lldm %02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(b, sizeof b, "%llds", static_cast<long long>(s));
  }
  return b;
}

std::string metric_axis(const std::string& metric) { return metric + (metric == "bleu" ? " (0-100)" : " (fraction)"); }

// "lora: r=4, alpha=8, dropout=0; targets: a, b" for each PEFT method of the config.
std::string peft_text(const json& config) {
  if (!config.contains("peft") || !config["peft"].is_object()) return "none";
  std::string out;
  for (const auto& [method, settings] : config["peft"].items()) {
    if (method == "init_from") {
      if (settings.is_string() && !settings.get<std::string>().empty())
        out += "<div>initialised from <code>" + h(settings.get<std::string>()) + "</code></div>";
      continue;
    }
    std::string params, targets;
    if (settings.is_object()) {
      for (const auto& [k, v] : settings.items()) {
        if (k == "targets" && v.is_array()) {
          for (const auto& t : v) targets += (targets.empty() ? "" : ", ") + std::string("<code>") + h(t.is_string() ? t.get<std::string>() : t.dump()) + "</code>";
        } else {
          params += (params.empty() ? "" : ", ") + h(k) + "=" + h(v.is_string() ? v.get<std::string>() : v.dump());
        }
      }
    }
    out += "<div><b>" + h(method) + "</b>" + (params.empty() ? "" : ": " + params) + (targets.empty() ? "" : "; targets: " + targets) + "</div>";
  }
  return out.empty() ? "none" : out;
}

std::string trainable_text(const json& config) {
  if (!config.contains("trainable") || !config["trainable"].is_object()) return "";
  std::string out;
  for (const auto& [component, how] : config["trainable"].items())
    out += (out.empty() ? "" : ", ") + h(component) + ": " + h(how.is_string() ? how.get<std::string>() : how.dump());
  return out;
}

void row(std::string* o, const std::string& key, const std::string& value_html) {
  *o += "<tr><th scope=\"row\">" + h(key) + "</th><td>" + value_html + "</td></tr>\n";
}

std::string summary_table(const RunRecord& r, const fs::path& run_dir) {
  std::string o = "<table class=\"summary\">\n";
  const std::string description = json_or(r.config, "description", std::string());
  row(&o, "task", "<code>" + h(r.task) + "</code>" + (description.empty() ? "" : " &mdash; " + h(description)));
  row(&o, "status", r.finished ? "finished" : "<span class=\"warn\">running or interrupted (" + grouped(r.steps) + " steps recorded)</span>");
  std::string modules;
  if (r.config.contains("modules") && r.config["modules"].is_array())
    for (const auto& m : r.config["modules"]) modules += (modules.empty() ? "" : ", ") + h(m.is_string() ? m.get<std::string>() : m.dump());
  row(&o, "execution path", "Path-" + std::to_string(r.path) + (modules.empty() ? "" : " (" + modules + ")"));
  row(&o, "firmware", h(r.firmware_name) + " " + h(r.firmware_version) + "<br><code class=\"id\">" + h(r.firmware_id) + "</code>");
  row(&o, "PEFT methods", peft_text(r.config));
  if (const std::string t = trainable_text(r.config); !t.empty()) row(&o, "components", t);
  std::string params = grouped(r.trainable_parameters) + " trainable";
  if (r.frozen_parameters >= 0) {
    const double total = static_cast<double>(r.trainable_parameters + r.frozen_parameters);
    params += " / " + grouped(r.frozen_parameters) + " frozen (" +
              fixed(total > 0 ? 100.0 * static_cast<double>(r.trainable_parameters) / total : 0, 4) + "% trainable)";
  } else {
    params += " (frozen count not recorded by this run's m4forge)";
  }
  row(&o, "parameters", params);
  const fs::path adapter = run_dir / runkeys::kAdapterFile;
  std::error_code ec;
  const uint64_t adapter_bytes = fs::is_regular_file(adapter, ec) ? fs::file_size(adapter, ec) : 0;
  row(&o, "adapter", adapter_bytes ? "<code>" + h(runkeys::kAdapterFile) + "</code>, " + bytes_text(adapter_bytes) : "not written yet");
  if (!r.prompt_id.empty()) {
    row(&o, "prompt template", "<code>" + h(r.prompt_id) + "</code>" +
                                   (r.labels.empty() ? "" : ", " + std::to_string(r.labels.size()) + " labels"));
  }
  std::string data;
  for (const auto& [split, d] : r.datasets)
    data += "<div>" + h(split) + ": <code>" + h(d.file) + "</code> <code class=\"id\">" + h(d.sha256) + "</code></div>";
  row(&o, "datasets", data.empty() ? "none recorded" : data);
  row(&o, "seed", std::to_string(r.seed));
  row(&o, "world size", std::to_string(r.world) + " (" + h(r.backend) + ")");
  if (!r.device.empty()) row(&o, "device", h(r.device));
  row(&o, "precision", h(r.precision));
  row(&o, "steps", grouped(r.steps) + ", last loss " + fixed(r.last_loss, 4));
  row(&o, "started", h(utc_time(r.started)));
  row(&o, "wall time", r.finished ? duration_text(r.finished_at - r.started) : "&mdash;");
  row(&o, "m4forge", h(r.m4forge_version) + " (" + h(r.m4forge_revision) + ")");
  return o + "</table>\n";
}

std::string eval_table(const Curves& c, const RunRecord& r, const std::vector<json>& evals) {
  std::string o = "<table class=\"evals\">\n<tr><th>when</th><th>model</th><th>metric</th><th>value</th><th>samples</th><th>notes</th></tr>\n";
  size_t rows = 0;
  // The training's own evaluations: the last one is the final figure.
  for (size_t i = 0; i < c.evals.size(); ++i) {
    const EvalPoint& e = c.evals[i];
    const bool final = i + 1 == c.evals.size() && r.finished;
    o += std::string("<tr") + (final ? " class=\"final\"" : "") + "><td>training, step " + grouped(e.step) +
         "</td><td>adapter</td><td>" + h(e.metric) + "</td><td class=\"num\">" + format_metric(e.metric, e.value) +
         "</td><td class=\"num\">" + grouped(e.samples) + "</td><td>" + (final ? "final evaluation" : "") + "</td></tr>\n";
    ++rows;
  }
  static const std::pair<const char*, const char*> kModels[] = {
      {"adapter", "adapter"}, {"zero_shot", "zero-shot (no adapter)"}, {"from_scratch", "from scratch"}};
  for (const json& e : evals) {
    const std::string when = "m4forge eval, " + utc_time(json_or(e, "evaluated_at", int64_t{0}));
    for (const auto& [key, label] : kModels) {
      if (!e.contains(key) || !e[key].is_object()) continue;
      const json& m = e[key];
      const std::string metric = json_or(m, "metric", std::string("?"));
      std::string notes;
      if (m.contains("steps"))
        notes = h(json_or(m, "model", std::string())) + "; " + grouped(json_or(m, "steps", int64_t{0})) + " steps, all parameters trained";
      o += "<tr><td>" + h(when) + "</td><td>" + label + "</td><td>" + h(metric) + "</td><td class=\"num\">" +
           (m.contains("value") && m["value"].is_number() ? format_metric(metric, m["value"].get<double>()) : std::string("?")) +
           "</td><td class=\"num\">" + grouped(json_or(m, "samples", int64_t{0})) + "</td><td>" + notes + "</td></tr>\n";
      ++rows;
    }
  }
  if (!rows) o += "<tr><td colspan=\"6\">no evaluation yet (the task has no test split, or the run stopped before one)</td></tr>\n";
  return o + "</table>\n";
}

struct NamedChart {
  const char* file;
  Chart chart;
};

std::vector<NamedChart> charts(const Curves& c, const RunRecord& r) {
  std::vector<NamedChart> out;
  const bool generation = !r.decoding.empty();
  Chart loss;
  loss.title = "Training loss";
  loss.x_label = "step";
  loss.y_label = generation ? "cross-entropy per target token (nats)" : "cross-entropy (nats)";
  loss.series.push_back({"loss (raw)", thin_points(c.loss, reportfiles::kMaxChartPoints), "#9ecae1", 1.2, 1, false});
  loss.series.push_back({"loss (smoothed, EMA 0.9)", thin_points(ema_smooth(c.loss, 0.9), reportfiles::kMaxChartPoints), "#08519c", 2.2, 1, false});
  out.push_back({reportfiles::kLossChart, loss});
  Chart lr;
  lr.title = "Learning rate (" + json_or(r.config.contains("optim") ? r.config["optim"] : json(), "schedule", std::string("schedule")) + ")";
  lr.x_label = "step";
  lr.y_label = "learning rate";
  lr.y_from_zero = true;
  lr.series.push_back({"learning rate", thin_points(c.lr, reportfiles::kMaxChartPoints), "#2ca02c", 2, 1, false});
  out.push_back({reportfiles::kLrChart, lr});
  Chart ev;
  std::map<std::string, Points> by_metric;
  for (const EvalPoint& e : c.evals) by_metric[e.metric].emplace_back(static_cast<double>(e.step), e.value);
  const std::string metric = by_metric.empty() ? json_or(r.config, "metric", std::string("metric")) : by_metric.begin()->first;
  ev.title = "Evaluation on the test split";
  ev.x_label = "step";
  ev.y_label = by_metric.size() == 1 ? metric_axis(metric) : "metric";
  ev.y_from_zero = true;
  static const char* kColors[] = {"#d62728", "#9467bd", "#8c564b", "#e377c2"};
  size_t ci = 0;
  for (const auto& [name, pts] : by_metric) ev.series.push_back({name + " (adapter)", pts, kColors[ci++ % 4], 2, 1, true});
  if (by_metric.empty()) ev.series.push_back({metric + " (adapter)", {}, kColors[0], 2, 1, true});
  out.push_back({reportfiles::kEvalChart, ev});
  Chart tp;
  tp.title = "Training throughput (mean since the process started)";
  tp.x_label = "step";
  tp.y_label = "samples/s (global batch)";
  tp.y_from_zero = true;
  tp.series.push_back({"samples/s", thin_points(c.samples_per_s, reportfiles::kMaxChartPoints), "#ff7f0e", 1.5, 1, false});
  out.push_back({reportfiles::kThroughputChart, tp});
  for (NamedChart& nc : out) nc.chart.x_min = 0, nc.chart.x_max = static_cast<double>(r.steps);  // one step axis for all
  return out;
}

}  // namespace

std::string format_metric(const std::string& metric, double v) { return fixed(v, metric == "bleu" ? 2 : 4); }

std::string utc_time(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "unknown";
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[64];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return b;
}

std::string report_page_head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + h(title) +
         "</title>\n<style>\n"
         "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}\n"
         "h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px}\n"
         ".sub{color:#555;margin-top:0}\n"
         "table{border-collapse:collapse;font-size:13px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\n"
         "table.summary th{background:#f6f6f6;white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
         "tr.final td{font-weight:bold} .warn{color:#a40000} code.id{font-size:11px;color:#555}\n"
         ".charts{display:flex;flex-wrap:wrap;gap:16px} .charts figure{margin:0} .charts svg{border:1px solid #ddd}\n"
         "td.failed{color:#a40000;font-weight:bold} td.done,td.already_done{color:#006d2c}\n"
         "</style>\n</head>\n";
}

RunReport write_run_report(const fs::path& run_dir) {
  RunReport out;
  const RunRecord r = read_run_record(run_dir);
  const Curves c = read_curves(run_dir / runkeys::kMetricsFile, &out.warnings);
  const std::vector<json> evals = read_evals(run_dir / runkeys::kEvalsFile, &out.warnings);
  const std::vector<NamedChart> cs = charts(c, r);
  const std::string name = fs::absolute(run_dir).lexically_normal().filename().string();
  std::string page = report_page_head("m4forge run report: " + name);
  page += "<body>\n<h1>Run report: " + h(name) + "</h1>\n<p class=\"sub\">task <code>" + h(r.task) + "</code> on " +
          h(r.firmware_name) + " " + h(r.firmware_version) + ", started " + h(utc_time(r.started)) +
          (r.finished ? ", finished " + h(utc_time(r.finished_at)) : ", not finished") + "</p>\n";
  page += "<h2>What was trained</h2>\n" + summary_table(r, run_dir);
  page += "<h2>Evaluation</h2>\n" + eval_table(c, r, evals);
  page += "<h2>Curves</h2>\n<div class=\"charts\">\n";
  for (const NamedChart& nc : cs) {
    const std::string svg = render_svg(nc.chart);
    write_file_atomic(run_dir / nc.file, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg);
    page += "<figure id=\"" + std::string(nc.file) + "\">" + svg + "<figcaption><a href=\"" + nc.file + "\">" + nc.file +
            "</a></figcaption></figure>\n";
  }
  page += "</div>\n";
  if (!out.warnings.empty()) {
    page += "<h2>Warnings</h2>\n<ul class=\"warnings\">\n";
    for (const std::string& w : out.warnings) page += "<li>" + h(w) + "</li>\n";
    page += "</ul>\n";
  }
  page += "<p class=\"sub\">Written by m4forge from <code>run.json</code>, <code>metrics.jsonl</code> and <code>evals.jsonl</code> in " +
          h(fs::absolute(run_dir).lexically_normal().string()) + ".</p>\n</body>\n</html>\n";
  out.html = run_dir / runkeys::kReportFile;
  write_file_atomic(out.html, page);
  return out;
}

void append_evaluation(const fs::path& run_dir, const json& result) {
  json row = result;
  row["evaluated_at"] = static_cast<int64_t>(std::time(nullptr));
  const std::string line = row.dump() + "\n";
  const fs::path file = run_dir / runkeys::kEvalsFile;
  // One write(2) with O_APPEND: two evaluations at once never interleave.
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  M4_CHECK(fd >= 0, ErrorCode::kIo, file.string(), ": cannot open for appending: ", std::strerror(errno));
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int err = errno;
  ::close(fd);
  M4_CHECK(n == static_cast<ssize_t>(line.size()), ErrorCode::kIo, file.string(), ": write failed: ", std::strerror(err));
}

}  // namespace m4
