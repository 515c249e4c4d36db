// HTTP/JSON routes of `m4forge serve` (see http_api.h).
#include "serve/http_api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <set>

#include "bundle/minisign.h"
#include "core/error.h"
#include "data/input_file.h"
#include "firmware/firmware.h"
#include "serve/adapter_host.h"

namespace m4 {
using nlohmann::json;

namespace {

constexpr int kMaxJsonDepth = 32;

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

void fail(httplib::Response& res, int status, const std::string& message) { reply(res, status, {{"error", one_line(message)}}); }

// A request's fault, with the status that says whose.
struct RequestError {
  int status;
  std::string message;
};

// The body as a JSON object: no deeper than kMaxJsonDepth (checked before
// parsing, so a hostile nesting costs a scan, not a stack).
json body_object(const httplib::Request& req) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : req.body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') max_depth = std::max(max_depth, ++depth);
    else if (c == '}' || c == ']') --depth;
  }
  if (max_depth > kMaxJsonDepth) throw RequestError{400, "request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels"};
  json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw RequestError{400, "request body is not valid JSON"};
  if (!j.is_object()) throw RequestError{400, "request body must be a JSON object"};
  return j;
}

std::string string_field(const json& j, const char* key, bool required) {
  if (!j.contains(key)) {
    if (required) throw RequestError{400, std::string("request needs \"") + key + "\" (a string)"};
    return "";
  }
  if (!j[key].is_string()) throw RequestError{400, std::string("\"") + key + "\" must be a string"};
  return j[key].get<std::string>();
}

// {"text"?, "input"?: {"format", "base64"}} -> a batch of one, decoded as `run` decodes files.
data::Batch request_input(const json& j) {
  static const std::set<std::string> kKeys = {"text", "input"};
  for (const auto& [k, v] : j.items()) {
    if (!kKeys.count(k)) throw RequestError{400, "unknown key \"" + k.substr(0, 64) + "\" (known: text, input)"};
  }
  const std::string text = string_field(j, "text", false);
  if (!j.contains("input")) {
    if (!j.contains("text")) throw RequestError{400, "request needs \"text\" or \"input\": {\"format\", \"base64\"}"};
    return data::text_input(text);
  }
  const json& in = j["input"];
  if (!in.is_object()) throw RequestError{400, "\"input\" must be an object {\"format\", \"base64\"}"};
  const std::string format = string_field(in, "format", true), b64 = string_field(in, "base64", true);
  static const std::set<std::string> kFormats = {"png", "wav", "flac", "ogg", "csv", "txt"};
  if (!kFormats.count(format))
    throw RequestError{400, "input format '" + format.substr(0, 32) + "' is not one of png, wav, flac, ogg, csv, txt"};
  std::vector<uint8_t> bytes;
  try {
    bytes = minisign::base64_decode(b64, "request", "input.base64");
  } catch (const Error& e) {
    throw RequestError{400, e.what()};
  }
  data::Batch b;
  try {
    b = data::read_input_bytes({reinterpret_cast<const char*>(bytes.data()), bytes.size()}, format, "input (" + format + ")");
  } catch (const Error& e) {
    throw RequestError{422, e.what()};
  }
  if (j.contains("text")) b.texts["text"] = {text};
  return b;
}

// Runs a route body; every failure becomes one JSON error line and a 4xx.
template <typename Fn>
void guarded(httplib::Response& res, Fn&& fn) {
  try {
    fn();
  } catch (const RequestError& e) {
    fail(res, e.status, e.message);
  } catch (const Error& e) {
    fail(res, 422, e.what());
  } catch (const std::exception& e) {
    fail(res, 500, std::string("internal error: ") + e.what());
  }
}

}  // namespace

HttpApi::HttpApi(AdapterHost& host, ServeOptions options)
    : host_(host), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  httplib::Server& s = *server_;
  s.set_payload_max_length(options_.max_body_bytes);
  s.Get("/v1/health", [this](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"status", "ok"}, {"adapters", host_.list().size()}});
  });
  s.Get("/v1/adapters", [this](const httplib::Request&, httplib::Response& res) {
    const Firmware& fw = host_.firmware();
    json list = json::array();
    for (const auto& a : host_.list()) list.push_back(a.to_json());
    reply(res, 200, {{"firmware", {{"name", fw.manifest().name}, {"version", fw.manifest().version}, {"id", fw.id()}}},
                     {"adapters", list}});
  });
  s.Post("/v1/adapters", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const json j = body_object(req);
      for (const auto& [k, v] : j.items()) {
        if (k != "name" && k != "bundle") throw RequestError{400, "unknown key \"" + k.substr(0, 64) + "\" (known: name, bundle)"};
      }
      const std::string name = string_field(j, "name", true), bundle = string_field(j, "bundle", true);
      if (host_.has(name)) throw RequestError{409, "adapter '" + name + "' is already loaded (unload it first)"};
      HostedAdapter a;
      try {
        a = host_.load(name, bundle);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kInvalidArgument) throw RequestError{host_.has(name) ? 409 : 400, e.what()};
        throw;
      }
      spdlog::info("serve: loaded {} from {} ({}); canary {}", a.name, a.bundle.string(), a.task, a.canary);
      reply(res, 201, {{"loaded", a.to_json()}});
    });
  });
  s.Delete(R"(/v1/adapters/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (!host_.unload(name)) return fail(res, 404, "no adapter '" + name.substr(0, 80) + "' is loaded");
    spdlog::info("serve: unloaded {}", name);
    reply(res, 200, {{"unloaded", name}});
  });
  s.Post(R"(/v1/adapters/([^/]+)/predict)", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const std::string name = req.matches[1];
      if (!host_.has(name)) throw RequestError{404, "no adapter '" + name.substr(0, 80) + "' is loaded"};
      const data::Batch in = request_input(body_object(req));
      HostPrediction p;
      try {
        p = host_.predict(name, in);
      } catch (const Error& e) {
        // Unloaded between the check and the run: still the caller's 404.
        if (!host_.has(name)) throw RequestError{404, "no adapter '" + name.substr(0, 80) + "' is loaded"};
        throw;
      }
      json out = {{"adapter", name}, {"text", p.text}};
      if (p.label >= 0) out["label"] = p.label;
      if (!p.scores.empty()) out["scores"] = p.scores;
      reply(res, 200, out);
    });
  });
  // Routes that do not exist, bodies over the limit, methods not served: JSON too.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a route's own error
    const std::string why = res.status == 413   ? "request body over the server's limit"
                            : res.status == 404 ? "no route " + req.method + " " + req.path.substr(0, 120)
                            : res.status == 400 ? "malformed HTTP request"
                                                : "request refused (HTTP " + std::to_string(res.status) + ")";
    fail(res, res.status, why);
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      fail(res, 500, std::string("internal error: ") + e.what());
    } catch (...) {
      fail(res, 500, "internal error");
    }
  });
}

HttpApi::~HttpApi() = default;

int HttpApi::bind() {
  if (options_.port == 0) {
    const int port = server_->bind_to_any_port(options_.host);
    M4_CHECK(port > 0, ErrorCode::kIo, "serve: cannot bind ", options_.host, " (any port)");
    options_.port = port;
    return port;
  }
  M4_CHECK(server_->bind_to_port(options_.host, options_.port), ErrorCode::kIo, "serve: cannot bind ", options_.host, ":",
           options_.port, " (in use, or not an address of this machine)");
  return options_.port;
}

void HttpApi::run() { server_->listen_after_bind(); }

void HttpApi::stop() { server_->stop(); }

}  // namespace m4
