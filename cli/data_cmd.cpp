// `m4forge data ...`: import (raw forms -> HDF5 dataset), inspect (counts,
// shapes, label histogram, provenance). Format: docs/data-format.md.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_common.h"
#include "core/error.h"
#include "data/dataset_reader.h"
#include "data/importers.h"

namespace m4::cli {
namespace {
using json = nlohmann::json;

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, ',')) {
    M4_CHECK(!cur.empty(), ErrorCode::kInvalidArgument, "--label-names '", s, "' has an empty name");
    out.push_back(cur);
  }
  return out;
}

// An argument as a POSIX shell would need it, so `created_by` can be re-run.
std::string shell_quote(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                       "0123456789-_./=:,+@%") == std::string::npos;
  if (plain) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

int import_cmd(int argc, char** argv) {
  std::string formats;
  for (const auto& f : data::import_formats()) formats += (formats.empty() ? "" : ", ") + f;
  cxxopts::Options o("m4forge data import", "Convert a raw dataset split into an m4forge HDF5 dataset.");
  o.add_options()("format", "raw form: " + formats, cxxopts::value<std::string>())(
      "out", "HDF5 file to write (written only on success)", cxxopts::value<std::string>())(
      "split", "split name", cxxopts::value<std::string>()->default_value("train"))(
      "source", "where the data came from (default: the input paths)", cxxopts::value<std::string>())(
      "license", "the data's license", cxxopts::value<std::string>()->default_value(""))(
      "label-names", "comma-separated label names, index = label id (default: collected, sorted)",
      cxxopts::value<std::string>())(
      "images", "idx: X-images-idx3-ubyte[.gz]", cxxopts::value<std::string>())(
      "labels", "idx: X-labels-idx1-ubyte[.gz]", cxxopts::value<std::string>())(
      "csv", "image-csv/wav-csv: CSV with file,label[,text]; imu-csv: window,label,ax,ay,az,gx,gy,gz",
      cxxopts::value<std::string>())("jsonl", "jsonl: one object per line with text/label/target_text",
                                     cxxopts::value<std::string>())(
      "input", "input-ids: safetensors with input_ids I64 [N,T] (+ attention_mask, label)",
      cxxopts::value<std::string>())("resize", "image-csv: resize every image to HxW (bilinear)",
                                     cxxopts::value<std::string>())(
      "sample-rate", "wav-csv: resample every file to this rate (Hz)",
      cxxopts::value<int64_t>()->default_value("16000"))(
      "seconds", "wav-csv: pad/trim every clip to this many seconds", cxxopts::value<double>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  data::ImportOptions io;
  io.format = required(r, "format");
  io.out = required(r, "out");
  io.split = r["split"].as<std::string>();
  io.license = r["license"].as<std::string>();
  if (r.count("source")) io.source = r["source"].as<std::string>();
  if (r.count("label-names")) io.label_names = split_commas(r["label-names"].as<std::string>());
  if (r.count("images")) io.images = r["images"].as<std::string>();
  if (r.count("labels")) io.labels = r["labels"].as<std::string>();
  if (r.count("csv")) io.csv = r["csv"].as<std::string>();
  if (r.count("jsonl")) io.jsonl = r["jsonl"].as<std::string>();
  if (r.count("input")) io.input = r["input"].as<std::string>();
  if (r.count("resize")) io.resize = data::parse_size(r["resize"].as<std::string>());
  io.sample_rate = r["sample-rate"].as<int64_t>();
  if (r.count("seconds")) io.seconds = r["seconds"].as<double>();
  io.created_by = "m4forge data";
  for (int i = 0; i < argc; ++i) io.created_by += " " + shell_quote(argv[i]);
  auto t0 = std::chrono::steady_clock::now();
  int64_t n = data::import_dataset(io);
  spdlog::info("wrote {} samples to {} in {:.2f} s", n, io.out.string(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::cout << "samples: " << n << "\n";
  return 0;
}

int inspect_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge data inspect", "Show a dataset: counts, shapes, dtypes, labels, provenance.");
  o.add_options()("file", "dataset HDF5 file", cxxopts::value<std::string>())("json", "print JSON instead of text");
  o.parse_positional({"file"});
  o.positional_help("FILE.h5");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  auto reader = data::DatasetReader::open(required(r, "file"));
  const auto& a = reader->attributes();
  std::vector<int64_t> hist(a.label_names.size(), 0);
  for (int64_t l : reader->labels()) ++hist[static_cast<size_t>(l)];

  json j;
  j["file"] = reader->path().string();
  j["format"] = data::kFormatTag;
  j["num_samples"] = reader->num_samples();
  j["attributes"] = {{data::attr::kSplit, a.split},           {data::attr::kSource, a.source},
                     {data::attr::kLicense, a.license},       {data::attr::kModality, a.modality},
                     {data::attr::kLabelNames, a.label_names}, {data::attr::kCreatedBy, a.created_by}};
  if (a.sample_rate) j["attributes"][data::attr::kSampleRate] = *a.sample_rate;
  j["datasets"] = json::object();
  for (const auto& l : reader->layouts()) {
    j["datasets"][l.name] = {{"dtype", data::elem_type_name(l.type)}, {"shape", l.shape}};
  }
  if (reader->has(data::ds::kLabel)) {
    j["label_histogram"] = json::array();
    for (size_t i = 0; i < hist.size(); ++i) {
      j["label_histogram"].push_back({{"id", i}, {"name", a.label_names[i]}, {"count", hist[i]}});
    }
  }
  if (r.count("json")) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::ostringstream t;
  std::string modality;
  for (const auto& m : a.modality) modality += (modality.empty() ? "" : ", ") + m;
  t << "file: " << reader->path().string() << "\nformat: " << data::kFormatTag
    << "\nnum_samples: " << reader->num_samples() << "\nsplit: " << a.split << "\nmodality: " << modality
    << "\nsource: " << a.source << "\nlicense: " << (a.license.empty() ? "(not stated)" : a.license);
  if (a.sample_rate) t << "\nsample_rate: " << *a.sample_rate;
  t << "\ncreated_by: " << a.created_by << "\ndatasets:\n";
  for (const auto& l : reader->layouts()) {
    t << "  " << l.name << ": " << data::elem_type_name(l.type) << " " << data::shape_string(l.shape) << "\n";
  }
  if (reader->has(data::ds::kLabel)) {
    t << "labels (" << a.label_names.size() << "):\n";
    for (size_t i = 0; i < hist.size(); ++i) {
      t << "  " << i << " " << a.label_names[i] << ": " << hist[i] << "\n";
    }
  }
  std::cout << t.str();
  return 0;
}

}  // namespace

int run_data(int argc, char** argv) {
  static const std::map<std::string, int (*)(int, char**)> kVerbs = {{"import", import_cmd},
                                                                     {"inspect", inspect_cmd}};
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cout << "usage: m4forge data <import|inspect> [options]\n";
    return argc < 2 ? 2 : 0;
  }
  auto it = kVerbs.find(argv[1]);
  M4_CHECK(it != kVerbs.end(), ErrorCode::kInvalidArgument, "unknown command 'data ", argv[1],
           "' (known: import, inspect)");
  return it->second(argc - 1, argv + 1);
}

}  // namespace m4::cli
