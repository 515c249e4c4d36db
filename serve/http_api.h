// `m4forge serve`'s local HTTP/JSON API over an AdapterHost, on cpp-httplib
// (Debian's libcpp-httplib). Routes (docs/serve.md):
//   GET    /v1/health                       {"status": "ok", "adapters": N}
//   GET    /v1/adapters                     the firmware and every loaded adapter
//   POST   /v1/adapters                     {"name", "bundle"}: load (verified, bound, canary re-run)
//   DELETE /v1/adapters/NAME                unload
//   POST   /v1/adapters/NAME/predict        {"text"?, "input"?: {"format": "png|wav|flac|ogg|csv|txt", "base64"}}
// Every error is a JSON {"error": "<one line>"} with a 4xx status (400 a
// malformed request, 404 an unknown adapter or route, 409 a name in use, 413 a
// body over the limit, 422 a bundle or input the model refuses); the server
// goes on serving.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

namespace httplib {
class Server;
}

namespace m4 {

class AdapterHost;

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port (printed)
  size_t max_body_bytes = 32 << 20;  // request bodies (base64 inputs) beyond this get 413
};

class HttpApi {
 public:
  HttpApi(AdapterHost& host, ServeOptions options);
  ~HttpApi();
  // Binds the socket; returns the port (the chosen one when options.port is 0).
  // m4::Error(kIo) when the address cannot be bound.
  int bind();
  // Serves until stop() (thread-safe; also from another thread).
  void run();
  void stop();

 private:
  AdapterHost& host_;
  ServeOptions options_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace m4
