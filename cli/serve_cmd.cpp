// `m4forge serve`: one firmware, many verified adapters, a local HTTP/JSON API
// (serve/adapter_host.h, serve/http_api.h; docs/serve.md).
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "cli/cli_common.h"
#include "core/error.h"
#include "firmware/firmware.h"
#include "serve/adapter_host.h"
#include "serve/http_api.h"

namespace m4::cli {
namespace {

std::atomic<int> g_stop_signal{0};
void on_stop_signal(int sig) { g_stop_signal.store(sig); }

}  // namespace

int run_serve(int argc, char** argv) {
  cxxopts::Options o("m4forge serve",
                     "Holds one firmware and many signed adapters, and serves them over a local HTTP/JSON API:\n"
                     "GET /v1/adapters, POST /v1/adapters {\"name\", \"bundle\"}, DELETE /v1/adapters/NAME,\n"
                     "POST /v1/adapters/NAME/predict {\"text\", \"input\": {\"format\", \"base64\"}} (docs/serve.md).\n"
                     "Every bundle is verified with the trusted keys, bound to the firmware and its canary re-run.");
  o.add_options()("firmware", "firmware directory (default: $M4FORGE_FIRMWARE)", cxxopts::value<std::string>())(
      "pubkey", "a trusted minisign public key (repeat for more)", cxxopts::value<std::vector<std::string>>())(
      "bundle", "NAME=B.m4adapter to load at start (repeat for more)", cxxopts::value<std::vector<std::string>>())(
      "host", "address to listen on", cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port (0: any free one, printed)", cxxopts::value<int>()->default_value("8080"))(
      "max-body-mib", "largest request body accepted (413 beyond)", cxxopts::value<int>()->default_value("32"));
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  M4_CHECK(r.count("pubkey"), ErrorCode::kInvalidArgument, "serve needs --pubkey (the keys whose bundles it trusts)");
  const int port = r["port"].as<int>(), body_mib = r["max-body-mib"].as<int>();
  M4_CHECK(port >= 0 && port <= 65535, ErrorCode::kInvalidArgument, "--port must be 0..65535, not ", port);
  M4_CHECK(body_mib >= 1 && body_mib <= 1024, ErrorCode::kInvalidArgument, "--max-body-mib must be 1..1024, not ", body_mib);
  std::vector<minisign::PublicKey> keys;
  for (const auto& k : r["pubkey"].as<std::vector<std::string>>()) keys.push_back(minisign::read_public_key(k));

  const Firmware fw = Firmware::open(firmware_dir_option(r));
  AdapterHost host(fw, keys);
  if (r.count("bundle")) {
    for (const auto& spec : r["bundle"].as<std::vector<std::string>>()) {
      const size_t eq = spec.find('=');
      M4_CHECK(eq != std::string::npos && eq > 0, ErrorCode::kInvalidArgument, "--bundle takes NAME=B.m4adapter, not '", spec, "'");
      const HostedAdapter a = host.load(spec.substr(0, eq), spec.substr(eq + 1));
      spdlog::info("serve: loaded {} ({}, {} bytes); canary {}", a.name, a.task, a.adapter_bytes, a.canary);
    }
  }

  ServeOptions so;
  so.host = r["host"].as<std::string>();
  so.port = port;
  so.max_body_bytes = static_cast<size_t>(body_mib) << 20;
  HttpApi api(host, so);
  const int bound = api.bind();
  // SIGINT/SIGTERM (whichever thread the kernel hands them to: BLAS and
  // server threads too) set a flag; this thread sees it and stops the server,
  // so the process exits 0.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load() && g_stop_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (const int sig = g_stop_signal.load()) spdlog::info("serve: signal {}: stopping", sig);
    api.stop();
  });
  std::cout << "serving " << host.list().size() << " adapters of " << fw.label() << " on http://" << so.host << ":" << bound
            << std::endl;
  api.run();
  done.store(true);
  watcher.join();
  return 0;
}

}  // namespace m4::cli
