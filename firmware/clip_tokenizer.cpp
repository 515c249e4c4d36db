// CLIP byte-level BPE tokenizer (HF transformers' tokenization_clip.py without
// ftfy; see clip_tokenizer.h for the pipeline and the known differences).
#include "firmware/clip_tokenizer.h"

#include <ATen/ATen.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace m4 {
namespace {

// Unicode classes and case come from ICU (Unicode 15.0 in Debian 12's ICU 72), which
// matches what HF's CLIPTokenizer runs on there: the `regex` module's \p{L} and \p{N}
// (Unicode 15.0) and Python 3.11's unicodedata (Unicode 14.0) for control characters,
// with code points assigned after 14.0 taken as unassigned (category Cn) as it takes
// them. Checked over every code point against Debian 12's python3 and python3-regex:
// no difference in L, N, C* or str.lower().

bool has_category(char32_t c, uint32_t mask) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & mask) != 0; }
bool is_letter(char32_t c) { return c < 0x80 ? ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') : has_category(c, U_GC_L_MASK); }
bool is_number(char32_t c) { return c < 0x80 ? (c >= '0' && c <= '9') : has_category(c, U_GC_N_MASK); }

// Assigned after Unicode 14.0 (or never: age 0): unassigned for Python 3.11's unicodedata.
bool newer_than_unicode_14(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] > 14 || (age[0] == 14 && (age[1] > 0 || age[2] > 0));
}

// BasicTokenizer._is_control: unicodedata.category(c) starts with "C" (Cc, Cf, Cs, Co,
// Cn), except \t \n \r.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  return has_category(c, U_GC_C_MASK) || newer_than_unicode_14(c);
}

// BasicTokenizer._is_whitespace: space, \t, \n, \r and category Zs.
bool is_basic_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's str.isspace() (what str.split() splits on).
bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// \s of the `regex` module: the White_Space property.
bool is_regex_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks.
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// UTF-8 -> code points; each invalid byte sequence becomes one U+FFFD.
std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = 0;
    char32_t cp = 0, min = 0;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    }
    int k = 1;
    for (; len > 0 && k < len && i + k < s.size(); ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) break;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (len == 0 || k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      out.push_back(0xFFFD);
      i += std::max(1, len == 0 ? 1 : k);
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void utf8_append(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(c, &out);
  return out;
}

bool is_ascii(const std::u32string& s) {
  return std::all_of(s.begin(), s.end(), [](char32_t c) { return c < 0x80; });
}

icu::UnicodeString to_icu(const std::u32string& s) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(s.data()), static_cast<int32_t>(s.size()));
}

void append_code_points(const icu::UnicodeString& u, std::u32string* out) {
  for (int32_t i = 0; i < u.length(); i = u.moveIndex32(i, 1)) out->push_back(static_cast<char32_t>(u.char32At(i)));
}

// Python's str.lower() of one whitespace-free word: ICU's full lowercase mapping in the
// root locale (special casings such as U+0130 -> "i" U+0307, and final sigma in its
// context), as Python applies them. ASCII words take a shortcut.
void lower_append(const std::u32string& w, std::u32string* out) {
  if (is_ascii(w)) {
    for (char32_t c : w) out->push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  icu::UnicodeString u = to_icu(w);
  append_code_points(u.toLower(icu::Locale::getRoot()), out);
}

// unicodedata.normalize("NFC", s), through ICU; ASCII is already NFC.
std::u32string nfc(const std::u32string& s) {
  if (is_ascii(s)) return s;
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
  M4_CHECK(U_SUCCESS(status), ErrorCode::kInternal, "CLIP tokenizer: ICU's NFC data is unavailable (",
           u_errorName(status), ")");
  const icu::UnicodeString composed = n->normalize(to_icu(s), status);
  M4_CHECK(U_SUCCESS(status), ErrorCode::kInternal, "CLIP tokenizer: NFC normalisation failed (", u_errorName(status),
           ")");
  std::u32string out;
  append_code_points(composed, &out);
  return out;
}

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the other 68
// to U+0100.. in byte order. Returned as UTF-8 strings.
const std::array<std::string, 256>& byte_encoder() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      utf8_append(static_cast<char32_t>(printable ? b : 256 + n++), &t[b]);
    }
    return t;
  }();
  return table;
}

const std::unordered_map<char32_t, unsigned char>& byte_decoder() {
  static const std::unordered_map<char32_t, unsigned char> table = [] {
    std::unordered_map<char32_t, unsigned char> t;
    for (int b = 0; b < 256; ++b) t[utf8_decode(byte_encoder()[b])[0]] = static_cast<unsigned char>(b);
    return t;
  }();
  return table;
}

// HF's BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize (clean,
// CJK spacing, NFC, whitespace split, lowercase per word), then " ".join(...).
std::u32string normalise(std::string_view text) {
  std::u32string cleaned;
  for (char32_t c : utf8_decode(text)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_basic_whitespace(c)) {
      cleaned.push_back(' ');
    } else if (is_cjk(c)) {
      cleaned.push_back(' ');
      cleaned.push_back(c);
      cleaned.push_back(' ');
    } else {
      cleaned.push_back(c);
    }
  }
  cleaned = nfc(cleaned);
  std::u32string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!out.empty()) out.push_back(' ');
    lower_append(word, &out);
    word.clear();
  };
  for (char32_t c : cleaned) {
    if (is_py_space(c))
      flush();
    else
      word.push_back(c);
  }
  flush();
  return out;
}

bool starts_with_at(const std::u32string& s, size_t i, std::u32string_view what) {
  return s.compare(i, what.size(), what) == 0;
}

// re.findall with CLIP's pattern over normalised (lowercase) text:
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
std::vector<std::string> split_pieces(const std::u32string& s) {
  std::vector<std::string> pieces;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t len = 0;
    if (starts_with_at(s, i, U"<|startoftext|>")) {
      len = 15;
    } else if (starts_with_at(s, i, U"<|endoftext|>")) {
      len = 13;
    } else if (s[i] == '\'' && i + 1 < n) {
      for (std::u32string_view suffix : {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"}) {
        if (starts_with_at(s, i + 1, suffix)) {
          len = 1 + suffix.size();
          break;
        }
      }
    }
    if (len == 0) {
      const char32_t c = s[i];
      if (is_letter(c)) {
        while (i + len < n && is_letter(s[i + len])) ++len;
      } else if (is_number(c)) {
        len = 1;
      } else if (!is_regex_space(c)) {
        while (i + len < n && !is_regex_space(s[i + len]) && !is_letter(s[i + len]) && !is_number(s[i + len])) ++len;
      }
    }
    if (len == 0) {
      ++i;  // whitespace: no alternative matches here
      continue;
    }
    pieces.push_back(utf8_encode(s.substr(i, len)));
    i += len;
  }
  return pieces;
}

std::string strip_ascii_ws(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  size_t b = 0, e = s.size();
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

void replace_all(std::string* s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

// HF caps the merges it reads at 49152 - 256 - 2 (CLIP's vocabulary budget).
constexpr size_t kMaxMerges = 49152 - 256 - 2;

}  // namespace

struct ClipTokenizer::Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::vector<std::string>> words;
};

ClipTokenizer ClipTokenizer::load(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt,
                                  const ClipTokenizerOptions& options) {
  const std::string vocab = read_text_file(vocab_json, 256 << 20);
  const std::string merges = read_text_file(merges_txt, 256 << 20);
  return from_strings(vocab, merges, vocab_json.string(), merges_txt.string(), options);
}

ClipTokenizer ClipTokenizer::from_strings(std::string_view vocab_json, std::string_view merges_txt,
                                          const std::string& vocab_where, const std::string& merges_where,
                                          const ClipTokenizerOptions& options) {
  ClipTokenizer t;
  t.where_ = vocab_where;
  t.cache_ = std::make_shared<Cache>();

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(vocab_json);
  } catch (const nlohmann::json::exception& e) {
    M4_FAIL(ErrorCode::kBadInput, vocab_where, ": not valid JSON (", e.what(), ")");
  }
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, vocab_where, ": must be a JSON object mapping tokens to ids, found ",
           j.type_name());
  for (const auto& [token, id] : j.items()) {
    M4_CHECK(
        id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= std::numeric_limits<int32_t>::max(),
        ErrorCode::kBadInput, vocab_where, ": the id of token '", token, "' must be a non-negative integer, found ",
        id.dump());
    const int64_t v = id.get<int64_t>();
    t.vocab_[token] = v;
    t.id_to_token_[v] = token;
  }

  // As HF: strip the file, drop its first line (the "#version" header), keep at
  // most kMaxMerges lines; each is "first second". A later duplicate wins.
  const std::string text = strip_ascii_ws(merges_txt);
  size_t pos = text.find('\n');
  size_t line_no = 1;
  int64_t rank = 0;
  while (pos != std::string::npos && static_cast<size_t>(rank) < kMaxMerges) {
    const size_t start = pos + 1;
    pos = text.find('\n', start);
    ++line_no;
    const std::string line = text.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
    std::vector<std::string> parts;
    size_t k = 0;
    while (k < line.size()) {
      while (k < line.size() && std::isspace(static_cast<unsigned char>(line[k]))) ++k;
      size_t e = k;
      while (e < line.size() && !std::isspace(static_cast<unsigned char>(line[e]))) ++e;
      if (e > k) parts.push_back(line.substr(k, e - k));
      k = e;
    }
    M4_CHECK(parts.size() == 2, ErrorCode::kBadInput, merges_where, ":", line_no,
             ": a merge must be two symbols separated by a space, found '", strip_ascii_ws(line), "'");
    t.ranks_[parts[0] + " " + parts[1]] = rank++;
  }

  auto special = [&](const std::string& token, const char* role) {
    auto it = t.vocab_.find(token);
    M4_CHECK(it != t.vocab_.end(), ErrorCode::kBadInput, vocab_where, ": the ", role, " token '", token,
             "' is not in the vocabulary");
    t.specials_.push_back(token);
    return it->second;
  };
  t.bos_ = special(options.bos_token, "bos");
  t.eos_ = special(options.eos_token, "eos");
  t.unk_ = special(options.unk_token, "unk");
  t.pad_ = special(options.pad_token, "pad");
  return t;
}

int64_t ClipTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& piece) const {
  // HF's cache starts with these two, which BPE leaves whole (no "</w>").
  if (piece == "<|startoftext|>" || piece == "<|endoftext|>") return {piece};
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->words.find(piece);
    if (it != cache_->words.end()) return it->second;
  }
  std::vector<std::string> word;
  for (char32_t c : utf8_decode(piece)) {
    word.emplace_back();
    utf8_append(c, &word.back());
  }
  if (word.empty()) return {};
  word.back() += "</w>";
  while (word.size() > 1) {
    // The adjacent pair with the lowest rank, then merge all its occurrences
    // left to right.
    int64_t best = std::numeric_limits<int64_t>::max();
    std::string first, second;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (best == std::numeric_limits<int64_t>::max()) break;
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(std::move(word[i]));
        i += 1;
      }
    }
    word = std::move(merged);
  }
  std::lock_guard<std::mutex> lock(cache_->mu);
  if (cache_->words.size() > (1u << 16)) cache_->words.clear();  // bound memory on long runs
  cache_->words.emplace(piece, word);
  return word;
}

std::vector<std::string> ClipTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  const auto& enc = byte_encoder();
  auto add_segment = [&](std::string_view segment) {
    for (const std::string& piece : split_pieces(normalise(segment))) {
      std::string mapped;
      for (unsigned char b : piece) mapped += enc[b];
      for (auto& t : bpe(mapped)) tokens.push_back(std::move(t));
    }
  };
  // As HF's added-token trie: special tokens (exact text, longest first) are cut
  // out before normalisation and stay whole.
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const std::string* hit = nullptr;
    for (const std::string& sp : specials_) {
      if (!sp.empty() && text.compare(i, sp.size(), sp) == 0 && (hit == nullptr || sp.size() > hit->size())) hit = &sp;
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    add_segment(text.substr(start, i - start));
    tokens.push_back(*hit);
    i += hit->size();
    start = i;
  }
  add_segment(text.substr(start));
  return tokens;
}

std::vector<int64_t> ClipTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids{bos_};
  for (const std::string& t : tokenize(text)) {
    auto it = vocab_.find(t);
    ids.push_back(it == vocab_.end() ? unk_ : it->second);
  }
  ids.push_back(eos_);
  return ids;
}

ClipBatch ClipTokenizer::encode_batch(const std::vector<std::string>& texts, int64_t max_length,
                                      bool pad_to_max_length) const {
  M4_CHECK(max_length >= 2, ErrorCode::kInvalidArgument,
           "CLIP tokenizer: max_length must be at least 2 (bos + eos), found ", max_length);
  std::vector<std::vector<int64_t>> rows;
  int64_t longest = 0;
  for (const std::string& text : texts) {
    std::vector<int64_t> ids = encode(text);
    if (static_cast<int64_t>(ids.size()) > max_length) {
      ids.resize(static_cast<size_t>(max_length));
      ids.back() = eos_;  // bos + the first max_length-2 tokens + eos
    }
    longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
    rows.push_back(std::move(ids));
  }
  const int64_t B = static_cast<int64_t>(rows.size()), T = pad_to_max_length ? max_length : longest;
  ClipBatch out;
  // input_ids / attention_mask: (B, T)
  out.input_ids = at::full({B, T}, pad_, at::kLong);
  out.attention_mask = at::zeros({B, T}, at::kLong);
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto mask = out.attention_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    for (size_t t = 0; t < rows[b].size(); ++t) {
      ids[b][static_cast<int64_t>(t)] = rows[b][t];
      mask[b][static_cast<int64_t>(t)] = 1;
    }
  }
  return out;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::string joined;
  for (int64_t id : ids) {
    if (skip_special_tokens && (id == bos_ || id == eos_ || id == pad_ || id == unk_)) continue;
    auto it = id_to_token_.find(id);
    M4_CHECK(it != id_to_token_.end(), ErrorCode::kInvalidArgument, where_, ": token id ", id,
             " is not in the vocabulary");
    joined += it->second;
  }
  // Symbols -> bytes (a symbol outside the byte alphabet keeps its UTF-8), then
  // back through UTF-8 so that invalid sequences become U+FFFD as Python's
  // errors="replace" does.
  std::string bytes;
  const auto& dec = byte_decoder();
  for (char32_t c : utf8_decode(joined)) {
    auto it = dec.find(c);
    if (it != dec.end())
      bytes.push_back(static_cast<char>(it->second));
    else
      utf8_append(c, &bytes);
  }
  std::string text = utf8_encode(utf8_decode(bytes));
  replace_all(&text, "</w>", " ");
  text = strip_ascii_ws(text);
  // HF's clean_up_tokenization (clean_up_tokenization_spaces=True).
  for (auto [from, to] : std::initializer_list<std::pair<std::string_view, std::string_view>>{{" .", "."},
                                                                                              {" ?", "?"},
                                                                                              {" !", "!"},
                                                                                              {" ,", ","},
                                                                                              {" ' ", "'"},
                                                                                              {" n't", "n't"},
                                                                                              {" 'm", "'m"},
                                                                                              {" 's", "'s"},
                                                                                              {" 've", "'ve"},
                                                                                              {" 're", "'re"}}) {
    replace_all(&text, from, to);
  }
  return text;
}

const std::array<std::string, 256>& clip_byte_symbols() { return byte_encoder(); }

}  // namespace m4
