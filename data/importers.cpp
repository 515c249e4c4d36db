// Importers from raw dataset forms to DatasetContents (see importers.h).
#include "data/importers.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "data/csv_reader.h"
#include "data/png_image.h"
#include "data/resample.h"
#include "data/wav.h"

namespace m4::data {
namespace {
namespace fs = std::filesystem;

bool is_integer(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  return i < s.size() && std::all_of(s.begin() + i, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Label names when none were given: the distinct values, sorted (numerically
// when every value is an integer, so "2" < "10").
std::vector<std::string> collect_label_names(const std::vector<std::string>& raw) {
  std::set<std::string> distinct(raw.begin(), raw.end());
  std::vector<std::string> names(distinct.begin(), distinct.end());
  if (std::all_of(names.begin(), names.end(), is_integer)) {
    std::sort(names.begin(), names.end(),
              [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  }
  return names;
}

// Label strings -> ids through the given names (or the collected ones).
// `where[i]` names the file and line of raw[i].
at::Tensor map_labels(const std::vector<std::string>& raw, const std::vector<std::string>& where,
                      std::vector<std::string>* names) {
  if (names->empty()) *names = collect_label_names(raw);
  std::map<std::string, int64_t> id;
  for (size_t i = 0; i < names->size(); ++i) id.emplace((*names)[i], static_cast<int64_t>(i));
  M4_CHECK(id.size() == names->size(), ErrorCode::kInvalidArgument, "--label-names has duplicate names");
  at::Tensor out = at::empty({static_cast<int64_t>(raw.size())}, at::kLong);
  auto* p = out.data_ptr<int64_t>();
  for (size_t i = 0; i < raw.size(); ++i) {
    auto it = id.find(raw[i]);
    if (it == id.end()) {
      std::string known;
      for (const auto& n : *names) known += (known.empty() ? "" : ",") + n;
      M4_FAIL(ErrorCode::kBadInput, where[i], ": unknown label '", raw[i], "' (label names: ", known, ")");
    }
    p[i] = it->second;
  }
  return out;
}

fs::path relative_to(const fs::path& base_file, const std::string& file) {
  fs::path p(file);
  return p.is_absolute() ? p : base_file.parent_path() / p;
}

std::string label_value(const CsvTable& t, size_t row, int col) {
  const std::string& v = t.rows[row][static_cast<size_t>(col)];
  M4_CHECK(!v.empty(), ErrorCode::kBadInput, t.where(row), ": empty label");
  return v;
}

// ---- idx -------------------------------------------------------------------

DatasetContents read_idx_pair(const ImportOptions& o) {
  M4_CHECK(!o.images.empty() && !o.labels.empty(), ErrorCode::kInvalidArgument,
           "format idx needs --images and --labels");
  IdxArray images = read_idx(o.images), labels = read_idx(o.labels);
  M4_CHECK(images.dims.size() == 3, ErrorCode::kBadInput, o.images.string(), ": IDX images have ",
           images.dims.size(), " dimensions, expected 3 (N, H, W)");
  M4_CHECK(labels.dims.size() == 1, ErrorCode::kBadInput, o.labels.string(), ": IDX labels have ",
           labels.dims.size(), " dimensions, expected 1 (N)");
  M4_CHECK(images.dims[0] == labels.dims[0], ErrorCode::kMismatch, o.images.string(), " holds ", images.dims[0],
           " images but ", o.labels.string(), " holds ", labels.dims[0], " labels");
  const int64_t n = images.dims[0];
  DatasetContents c;
  c.tensors[ds::kImage] =
      at::from_blob(images.data.data(), {n, 1, images.dims[1], images.dims[2]}, at::kByte).clone();
  at::Tensor l = at::from_blob(labels.data.data(), {n}, at::kByte).to(at::kLong);
  c.attrs.label_names = o.label_names;
  const int64_t max_label = n ? l.max().item<int64_t>() : 0;
  if (c.attrs.label_names.empty()) {
    for (int64_t i = 0; i <= max_label; ++i) c.attrs.label_names.push_back(std::to_string(i));
  }
  const int64_t k = static_cast<int64_t>(c.attrs.label_names.size());
  if (max_label >= k) {
    int64_t at_index = l.ge(k).nonzero()[0][0].item<int64_t>();
    M4_FAIL(ErrorCode::kBadInput, o.labels.string(), ": label ", l[at_index].item<int64_t>(), " at index ",
            at_index, " has no name (", k, " label names given)");
  }
  c.tensors[ds::kLabel] = l;
  c.attrs.source = o.images.string() + " + " + o.labels.string();
  return c;
}

// ---- image-csv --------------------------------------------------------------

DatasetContents read_image_csv(const ImportOptions& o) {
  M4_CHECK(!o.csv.empty(), ErrorCode::kInvalidArgument, "format image-csv needs --csv");
  CsvTable t = read_csv(o.csv);
  const int fcol = t.require_column("file"), lcol = t.require_column("label"), tcol = t.column("text");
  const size_t n = t.rows.size();
  std::vector<fs::path> files(n);
  std::vector<PngInfo> infos(n);
  bool color = false;
  for (size_t i = 0; i < n; ++i) {
    M4_CHECK(!t.rows[i][static_cast<size_t>(fcol)].empty(), ErrorCode::kBadInput, t.where(i), ": empty file name");
    files[i] = relative_to(o.csv, t.rows[i][static_cast<size_t>(fcol)]);
    try {
      infos[i] = read_png_info(files[i]);
    } catch (const Error& e) {
      M4_FAIL(e.code(), t.where(i), ": ", e.what());
    }
    color = color || infos[i].color;
  }
  // Gray stays 1 channel; as soon as one image has colour, all become RGB.
  const int channels = color ? 3 : 1;
  const int64_t h = o.resize ? o.resize->first : infos[0].height;
  const int64_t w = o.resize ? o.resize->second : infos[0].width;
  at::Tensor images = at::empty({static_cast<int64_t>(n), channels, h, w}, at::kByte);
  std::vector<std::string> raw_labels, where, texts;
  for (size_t i = 0; i < n; ++i) {
    if (!o.resize) {
      M4_CHECK(infos[i].height == h && infos[i].width == w, ErrorCode::kMismatch, t.where(i), ": ",
               files[i].string(), " is ", infos[i].height, "x", infos[i].width, " but ", files[0].string(), " is ", h,
               "x", w, " (hint: --resize HxW)");
    }
    Image img;
    try {
      img = resize_bilinear(read_png(files[i], channels), h, w);
    } catch (const Error& e) {
      M4_FAIL(e.code(), t.where(i), ": ", e.what());
    }
    std::memcpy(images[static_cast<int64_t>(i)].data_ptr<uint8_t>(), img.pixels.data(), img.pixels.size());
    raw_labels.push_back(label_value(t, i, lcol));
    where.push_back(t.where(i));
    if (tcol >= 0) texts.push_back(t.rows[i][static_cast<size_t>(tcol)]);
  }
  DatasetContents c;
  c.attrs.label_names = o.label_names;
  c.tensors[ds::kImage] = images;
  c.tensors[ds::kLabel] = map_labels(raw_labels, where, &c.attrs.label_names);
  if (tcol >= 0) c.texts[ds::kText] = texts;
  c.attrs.source = o.csv.string();
  return c;
}

// ---- jsonl ------------------------------------------------------------------

DatasetContents read_jsonl(const ImportOptions& o) {
  M4_CHECK(!o.jsonl.empty(), ErrorCode::kInvalidArgument, "format jsonl needs --jsonl");
  const std::string text = read_text_file(o.jsonl, size_t{4} << 30);
  const std::string file = o.jsonl.string();
  std::vector<std::string> texts, targets, raw_labels, where;
  std::set<std::string> fields;  // of the first object; every line must match
  int64_t first_line = 0;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string at = file + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      M4_FAIL(ErrorCode::kBadInput, at, ": malformed JSON (", e.what(), ")");
    }
    M4_CHECK(j.is_object(), ErrorCode::kBadInput, at, ": expected a JSON object, found ", j.type_name());
    std::set<std::string> have;
    for (const char* k : {"text", "label", "target_text"}) {
      if (!j.contains(k)) continue;
      M4_CHECK(j[k].is_string(), ErrorCode::kBadInput, at, ": '", k, "' must be a string, found ", j[k].type_name());
      have.insert(k);
    }
    M4_CHECK(!have.empty(), ErrorCode::kBadInput, at, ": object has none of 'text', 'label', 'target_text'");
    if (first_line == 0) {
      fields = have;
      first_line = line_no;
    }
    for (const char* k : {"text", "label", "target_text"}) {
      M4_CHECK(have.count(k) == fields.count(k), ErrorCode::kBadInput, at, ": ", have.count(k) ? "has" : "lacks",
               " '", k, "' but line ", first_line, " ", have.count(k) ? "lacks" : "has", " it");
    }
    if (have.count("text")) texts.push_back(j["text"].get<std::string>());
    if (have.count("target_text")) targets.push_back(j["target_text"].get<std::string>());
    if (have.count("label")) {
      std::string l = j["label"].get<std::string>();
      M4_CHECK(!l.empty(), ErrorCode::kBadInput, at, ": empty label");
      raw_labels.push_back(l);
      where.push_back(at);
    }
  }
  M4_CHECK(first_line > 0, ErrorCode::kBadInput, file, ": no JSON lines");
  DatasetContents c;
  if (fields.count("text")) c.texts[ds::kText] = texts;
  if (fields.count("target_text")) c.texts[ds::kTargetText] = targets;
  if (fields.count("label")) {
    c.attrs.label_names = o.label_names;
    c.tensors[ds::kLabel] = map_labels(raw_labels, where, &c.attrs.label_names);
  }
  c.attrs.source = file;
  return c;
}

// ---- wav-csv ------------------------------------------------------------------

DatasetContents read_wav_csv(const ImportOptions& o) {
  M4_CHECK(!o.csv.empty(), ErrorCode::kInvalidArgument, "format wav-csv needs --csv");
  M4_CHECK(o.sample_rate > 0, ErrorCode::kInvalidArgument, "--sample-rate must be > 0, got ", o.sample_rate);
  M4_CHECK(o.seconds > 0, ErrorCode::kInvalidArgument, "format wav-csv needs --seconds S > 0 (every clip is padded or "
           "trimmed to it)");
  CsvTable t = read_csv(o.csv);
  const int fcol = t.require_column("file"), lcol = t.require_column("label");
  const int64_t n = static_cast<int64_t>(t.rows.size());
  const int64_t len = std::llround(o.seconds * static_cast<double>(o.sample_rate));
  M4_CHECK(len > 0, ErrorCode::kInvalidArgument, "--seconds ", o.seconds, " is less than one sample");
  at::Tensor audio = at::zeros({n, len}, at::kFloat);
  at::Tensor lengths = at::empty({n}, at::kLong);
  std::vector<std::string> raw_labels, where;
  for (int64_t i = 0; i < n; ++i) {
    const size_t r = static_cast<size_t>(i);
    const fs::path file = relative_to(o.csv, t.rows[r][static_cast<size_t>(fcol)]);
    MonoAudio a;
    try {
      a = read_audio_mono(file);
    } catch (const Error& e) {
      M4_FAIL(e.code(), t.where(r), ": ", e.what());
    }
    std::vector<float> x = resample(a.samples, a.sample_rate, o.sample_rate);
    const int64_t keep = std::min<int64_t>(len, static_cast<int64_t>(x.size()));
    std::memcpy(audio[i].data_ptr<float>(), x.data(), static_cast<size_t>(keep) * sizeof(float));
    lengths[i] = keep;
    raw_labels.push_back(label_value(t, r, lcol));
    where.push_back(t.where(r));
  }
  DatasetContents c;
  c.tensors[ds::kAudio] = audio;
  c.tensors[ds::kAudioLength] = lengths;
  c.attrs.sample_rate = o.sample_rate;
  c.attrs.label_names = o.label_names;
  c.tensors[ds::kLabel] = map_labels(raw_labels, where, &c.attrs.label_names);
  c.attrs.source = o.csv.string();
  return c;
}

// ---- imu-csv ------------------------------------------------------------------

DatasetContents read_imu_csv(const ImportOptions& o) {
  M4_CHECK(!o.csv.empty(), ErrorCode::kInvalidArgument, "format imu-csv needs --csv");
  CsvTable t = read_csv(o.csv);
  const int wcol = t.require_column("window"), lcol = t.require_column("label");
  int axes[6];
  const char* axis_names[6] = {"ax", "ay", "az", "gx", "gy", "gz"};
  for (int a = 0; a < 6; ++a) axes[a] = t.require_column(axis_names[a]);
  std::vector<float> values;
  std::vector<std::string> raw_labels, where;
  std::set<std::string> done;
  std::string current;
  int64_t steps = -1, count = 0;
  size_t start_row = 0;
  auto close_window = [&]() {
    if (steps < 0) steps = count;
    M4_CHECK(count == steps, ErrorCode::kMismatch, t.where(start_row), ": window '", current, "' has ", count,
             " rows but the first window has ", steps, " (every window must have the same length)");
  };
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const std::string& win = t.rows[r][static_cast<size_t>(wcol)];
    M4_CHECK(!win.empty(), ErrorCode::kBadInput, t.where(r), ": empty window id");
    if (r == 0 || win != current) {
      if (r > 0) close_window();
      M4_CHECK(!done.count(win), ErrorCode::kBadInput, t.where(r), ": window '", win,
               "' appears again after other windows (rows of a window must be contiguous)");
      done.insert(win);
      current = win;
      count = 0;
      start_row = r;
      raw_labels.push_back(label_value(t, r, lcol));
      where.push_back(t.where(r));
    } else {
      M4_CHECK(t.rows[r][static_cast<size_t>(lcol)] == raw_labels.back(), ErrorCode::kBadInput, t.where(r),
               ": window '", win, "' changes label from '", raw_labels.back(), "' to '",
               t.rows[r][static_cast<size_t>(lcol)], "'");
    }
    for (int a = 0; a < 6; ++a) {
      const std::string& s = t.rows[r][static_cast<size_t>(axes[a])];
      float v = 0;
      M4_CHECK(parse_finite_float(s, &v), ErrorCode::kBadInput, t.where(r), ": column '", axis_names[a],
               "' is not a finite number ('", s, "')");
      values.push_back(v);
    }
    ++count;
  }
  close_window();
  const int64_t n = static_cast<int64_t>(raw_labels.size());
  DatasetContents c;
  c.tensors[ds::kImu] = at::from_blob(values.data(), {n, steps, 6}, at::kFloat).clone();
  c.attrs.label_names = o.label_names;
  c.tensors[ds::kLabel] = map_labels(raw_labels, where, &c.attrs.label_names);
  c.attrs.source = o.csv.string();
  return c;
}

// ---- input-ids ----------------------------------------------------------------

at::Tensor i64_tensor(const SafetensorsFile& f, const std::string& name, int rank) {
  const TensorInfo* info = f.find(name);
  M4_CHECK(info->dtype == DType::kI64, ErrorCode::kBadInput, f.path().string(), ": tensor '", name, "' has dtype ",
           dtype_name(info->dtype), ", expected I64");
  M4_CHECK(static_cast<int>(info->shape.size()) == rank, ErrorCode::kBadInput, f.path().string(), ": tensor '",
           name, "' has shape ", shape_string(info->shape), ", expected rank ", rank);
  return f.tensor(name).clone();
}

DatasetContents read_input_ids(const ImportOptions& o) {
  M4_CHECK(!o.input.empty(), ErrorCode::kInvalidArgument, "format input-ids needs --input");
  SafetensorsFile f = SafetensorsFile::open(o.input);
  if (!f.contains(ds::kInputIds)) {
    std::string names;
    for (const auto& t : f.tensors()) names += (names.empty() ? "" : ", ") + t.name;
    M4_FAIL(ErrorCode::kBadInput, o.input.string(), ": no tensor 'input_ids' (found: ", names, ")");
  }
  DatasetContents c;
  at::Tensor ids = i64_tensor(f, ds::kInputIds, 2);
  c.tensors[ds::kInputIds] = ids;
  if (f.contains(ds::kAttentionMask)) {
    at::Tensor mask = i64_tensor(f, ds::kAttentionMask, 2);
    M4_CHECK(mask.sizes() == ids.sizes(), ErrorCode::kMismatch, o.input.string(), ": 'attention_mask' has shape ",
             shape_string(mask.sizes().vec()), " but 'input_ids' has ", shape_string(ids.sizes().vec()));
    c.tensors[ds::kAttentionMask] = mask;
  } else {
    c.tensors[ds::kAttentionMask] = at::ones_like(ids);
  }
  if (f.contains(ds::kLabel)) {
    at::Tensor l = i64_tensor(f, ds::kLabel, 1);
    c.tensors[ds::kLabel] = l;
    c.attrs.label_names = o.label_names;
    if (c.attrs.label_names.empty() && l.numel()) {
      for (int64_t i = 0; i <= l.max().item<int64_t>(); ++i) c.attrs.label_names.push_back(std::to_string(i));
    }
  }
  c.attrs.source = o.input.string();
  return c;
}

}  // namespace

const std::vector<std::string>& import_formats() {
  static const std::vector<std::string> f = {"idx", "image-csv", "jsonl", "wav-csv", "imu-csv", "input-ids"};
  return f;
}

IdxArray read_idx(const fs::path& path) {
  const std::string where = path.string();
  std::error_code ec;
  M4_CHECK(fs::is_regular_file(path, ec), ErrorCode::kIo, where, ": no such file");
  // gzopen reads plain files transparently, so .gz is optional.
  gzFile gz = gzopen(path.c_str(), "rb");
  M4_CHECK(gz, ErrorCode::kIo, where, ": cannot open");
  std::string bytes;
  char buf[1 << 16];
  int got = 0;
  while ((got = gzread(gz, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(got));
  // A truncated .gz reads as a short stream with Z_BUF_ERROR, not as -1.
  int errnum = Z_OK;
  std::string gzmsg = gzerror(gz, &errnum);
  gzclose(gz);
  M4_CHECK(got >= 0 && errnum == Z_OK, ErrorCode::kBadInput, where, ": truncated or corrupt gzip data (", gzmsg,
           ")");
  M4_CHECK(bytes.size() >= 4, ErrorCode::kBadInput, where, ": truncated IDX file (", bytes.size(),
           " bytes, no header)");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  M4_CHECK(p[0] == 0 && p[1] == 0, ErrorCode::kBadInput, where, ": not an IDX file (bad magic)");
  M4_CHECK(p[2] == 0x08, ErrorCode::kBadInput, where, ": IDX element type 0x", std::hex, int(p[2]),
           " is not unsigned byte (0x08)");
  const int ndims = p[3];
  M4_CHECK(ndims >= 1 && ndims <= 4, ErrorCode::kBadInput, where, ": IDX has ", ndims, " dimensions");
  const size_t header = 4 + 4 * static_cast<size_t>(ndims);
  M4_CHECK(bytes.size() >= header, ErrorCode::kBadInput, where, ": truncated IDX header");
  IdxArray a;
  uint64_t count = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* q = p + 4 + 4 * d;
    uint64_t v = (uint64_t{q[0]} << 24) | (uint64_t{q[1]} << 16) | (uint64_t{q[2]} << 8) | q[3];
    M4_CHECK(v > 0 && v < (1u << 31), ErrorCode::kBadInput, where, ": IDX dimension ", d, " is ", v);
    count *= v;
    M4_CHECK(count <= bytes.size(), ErrorCode::kBadInput, where, ": truncated IDX file (header claims more than ",
             bytes.size(), " bytes of data)");
    a.dims.push_back(static_cast<int64_t>(v));
  }
  const uint64_t have = bytes.size() - header;
  M4_CHECK(have >= count, ErrorCode::kBadInput, where, ": truncated IDX file (expected ", count,
           " bytes of data after the header, found ", have, ")");
  M4_CHECK(have == count, ErrorCode::kBadInput, where, ": IDX file has ", have - count, " bytes after the data");
  a.data.assign(p + header, p + header + count);
  return a;
}

std::pair<int64_t, int64_t> parse_size(const std::string& hxw) {
  size_t x = hxw.find('x');
  int64_t h = 0, w = 0;
  bool ok = x != std::string::npos && is_integer(hxw.substr(0, x)) && is_integer(hxw.substr(x + 1));
  if (ok) {
    h = std::stoll(hxw.substr(0, x));
    w = std::stoll(hxw.substr(x + 1));
  }
  M4_CHECK(ok && h > 0 && w > 0 && h <= 65535 && w <= 65535, ErrorCode::kInvalidArgument, "--resize '", hxw,
           "': expected HxW, e.g. 224x224");
  return {h, w};
}

DatasetContents read_raw(const ImportOptions& o) {
  DatasetContents c;
  if (o.format == "idx") c = read_idx_pair(o);
  else if (o.format == "image-csv") c = read_image_csv(o);
  else if (o.format == "jsonl") c = read_jsonl(o);
  else if (o.format == "wav-csv") c = read_wav_csv(o);
  else if (o.format == "imu-csv") c = read_imu_csv(o);
  else if (o.format == "input-ids") c = read_input_ids(o);
  else {
    std::string known;
    for (const auto& f : import_formats()) known += (known.empty() ? "" : ", ") + f;
    M4_FAIL(ErrorCode::kInvalidArgument, "unknown import format '", o.format, "' (known: ", known, ")");
  }
  if (!o.source.empty()) c.attrs.source = o.source;
  c.attrs.license = o.license;
  c.attrs.split = o.split;
  c.attrs.created_by = o.created_by;
  return c;
}

int64_t import_dataset(const ImportOptions& o) {
  M4_CHECK(!o.out.empty(), ErrorCode::kInvalidArgument, "missing --out");
  return write_dataset(o.out, read_raw(o));
}

}  // namespace m4::data
