// `m4forge serve` as a device would run it, against real HTTP clients (curl):
// many adapters on one firmware give the same answers as `m4forge run`, many
// clients at once, a bundle loaded and unloaded while requests run, bad
// bundles and bad requests answered with a 4xx and one line, and the server
// still serving after each.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bundle/minisign.h"
#include "core/atomic_file.h"
#include "tests/support/adapter_files.h"
#include "tests/support/cli_test.h"
#include "tests/support/image_files.h"

namespace m4::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Http {
  int status = 0;
  std::string body;
  json j() const { return json::parse(body, nullptr, false); }
};

// One `m4forge serve` process on a free port; killed if the test ends first.
class ServeProcess {
 public:
  ServeProcess(const std::vector<std::string>& args, const fs::path& dir) : err_(dir / "serve.err") {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(e, 2);
      ::close(out[0]);
      std::vector<std::string> all = {cli_path(), "serve", "--port", "0"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    // The first stdout line says where it listens: "serving N adapters of ... on http://127.0.0.1:PORT".
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      if (::poll(&p, 1, 1000) <= 0) continue;
      char buf[256];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    first_line_ = line;
    const size_t at = line.rfind(':');
    if (line.rfind("serving ", 0) == 0 && at != std::string::npos) port_ = std::atoi(line.c_str() + at + 1);
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  const std::string& first_line() const { return first_line_; }
  std::string log() const { return slurp(err_); }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  // SIGTERM, then the exit status.
  int stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  bool reaped_ = false;
  fs::path err_;
  std::string first_line_;
};

class ServeCli : public CliTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system("command -v curl >/dev/null"), 0) << "curl is not installed (scripts/setup-debian.sh installs it)";
    fw_ = demo("fw");
    key_ = (tmp_ / "key").string();
    ASSERT_EQ(m4({"keygen", "--out", key_}).code, 0);
    text_ = bundle("de", "translation_de_en");
    image_ = bundle("fm", "fashion_mnist");
    png_ = tmp_ / "shoe.png";
    write_flat_png(png_, 1, 28, 28, 90);
  }
  std::string bundle(const std::string& name, const std::string& task, uint64_t seed = 0) {
    const std::string cfg = (repo_dir() / "configs" / "tasks" / (task + ".yaml")).string();
    const std::string a = write_random_adapter(fw_, cfg, tmp_ / (name + ".safetensors"), seed);
    const std::string b = (tmp_ / (name + ".m4adapter")).string();
    const CliRun e = m4({"export", "--adapter", a, "--task", cfg, "--firmware", fw_, "--key", key_ + ".key", "--out", b,
                         "--log-level", "warn"});
    EXPECT_EQ(e.code, 0) << e.err;
    return b;
  }
  // curl METHOD URL [body]: the status and body.
  Http curl(const std::string& method, const std::string& url, const std::string& body = "", const std::string& tag = "r") {
    const fs::path in = tmp_ / ("curl-" + tag + ".in"), out = tmp_ / ("curl-" + tag + ".out"), code = tmp_ / ("curl-" + tag + ".code");
    std::string cmd = "curl -s -m 120 -X " + method + " -o " + quote(out.string()) + " -w '%{http_code}'";
    if (!body.empty()) {
      write_file_atomic(in, body);
      cmd += " -H 'Content-Type: application/json' --data-binary @" + quote(in.string());
    }
    cmd += " " + quote(url) + " > " + quote(code.string());
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return {std::atoi(slurp(code).c_str()), slurp(out)};
  }
  static std::string predict_text(const std::string& text) { return json({{"text", text}}).dump(); }
  std::string predict_image() const {
    const std::string bytes = slurp(png_);
    return json({{"input", {{"format", "png"}, {"base64", minisign::base64_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())}}}})
        .dump();
  }
  // What `m4forge run` answers for the same bundle and input.
  std::string run_answer(const std::string& bundle, const std::vector<std::string>& input) {
    std::vector<std::string> a = {"run", "--firmware", fw_, "--bundle", bundle, "--pubkey", key_ + ".pub", "--log-level", "warn"};
    a.insert(a.end(), input.begin(), input.end());
    const CliRun r = m4(a);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  void expect_error(const Http& h, int status, const std::string& needle) {
    EXPECT_EQ(h.status, status) << h.body;
    const json j = h.j();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << h.body;
    const std::string e = j["error"].get<std::string>();
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_NE(e.find(needle), std::string::npos) << e << "\nmissing: " << needle;
  }

  std::string fw_, key_, text_, image_;
  fs::path png_;
};

TEST_F(ServeCli, AdaptersAnswerAsRunDoesAndManyClientsAtOnceGetTheirOwnAdapters) {
  ServeProcess s({"--firmware", fw_, "--pubkey", key_ + ".pub", "--bundle", "de=" + text_, "--bundle", "fm=" + image_}, tmp_.path());
  ASSERT_GT(s.port(), 0) << s.first_line() << s.log();
  EXPECT_NE(s.first_line().find("serving 2 adapters of firmware m4-demo@"), std::string::npos) << s.first_line();

  const Http list = curl("GET", s.url("/v1/adapters"));
  ASSERT_EQ(list.status, 200) << list.body;
  const json l = list.j();
  EXPECT_EQ(l["firmware"]["name"], "m4-demo");
  ASSERT_EQ(l["adapters"].size(), 2u) << list.body;
  EXPECT_EQ(l["adapters"][0]["name"], "de");
  EXPECT_EQ(l["adapters"][0]["modality"], "text");
  EXPECT_EQ(l["adapters"][1]["modality"], "image");
  EXPECT_EQ(l["adapters"][1]["canary"].get<std::string>().rfind("ok: max |diff| 0 <=", 0), 0u) << list.body;

  // The same answers as `m4forge run` on the same bundles and inputs.
  const std::string de_expected = run_answer(text_, {"--text", "Guten Morgen"});
  const std::string fm_expected = run_answer(image_, {"--input", png_.string()});
  const Http de = curl("POST", s.url("/v1/adapters/de/predict"), predict_text("Guten Morgen"));
  ASSERT_EQ(de.status, 200) << de.body;
  EXPECT_EQ(de.j()["text"], de_expected) << de.body;
  const Http fm = curl("POST", s.url("/v1/adapters/fm/predict"), predict_image());
  ASSERT_EQ(fm.status, 200) << fm.body;
  EXPECT_EQ(fm.j()["text"], fm_expected) << fm.body;
  EXPECT_EQ(fm.j()["scores"].size(), 10u);

  // 16 clients at once, alternating adapters: every answer is its own adapter's.
  write_file_atomic(tmp_ / "de.json", predict_text("Guten Morgen"));
  write_file_atomic(tmp_ / "fm.json", predict_image());
  std::string script = "cd " + quote(tmp_.path().string()) + " && for i in $(seq 0 15); do a=$([ $((i % 2)) = 0 ] && echo de || echo fm); "
                       "curl -s -m 120 -o par-$i.out -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @$a.json " +
                       s.url("/v1/adapters/") + "$a/predict > par-$i.code & done; wait";
  ASSERT_EQ(std::system(("bash -c " + quote(script)).c_str()), 0);
  for (int i = 0; i < 16; ++i) {
    const std::string code = slurp(tmp_ / ("par-" + std::to_string(i) + ".code"));
    const json j = json::parse(slurp(tmp_ / ("par-" + std::to_string(i) + ".out")), nullptr, false);
    EXPECT_EQ(code, "200") << i;
    EXPECT_EQ(j.value("text", std::string("?")), i % 2 == 0 ? de_expected : fm_expected) << i;
  }
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST_F(ServeCli, BundlesLoadAndUnloadWhileRequestsRunAndBadOnesAreRefused) {
  ServeProcess s({"--firmware", fw_, "--pubkey", key_ + ".pub", "--bundle", "de=" + text_}, tmp_.path());
  ASSERT_GT(s.port(), 0) << s.first_line() << s.log();
  const std::string de_expected = run_answer(text_, {"--text", "Guten Morgen"});

  // Requests to `de` run in a loop while `fm` is loaded, used and unloaded.
  write_file_atomic(tmp_ / "de.json", predict_text("Guten Morgen"));
  const std::string loop = "cd " + quote(tmp_.path().string()) + " && for i in $(seq 0 11); do curl -s -m 120 -o loop-$i.out "
                           "-H 'Content-Type: application/json' --data-binary @de.json " + s.url("/v1/adapters/de/predict") + "; done";
  std::thread background([&] { EXPECT_EQ(std::system(("bash -c " + quote(loop)).c_str()), 0); });
  const Http loaded = curl("POST", s.url("/v1/adapters"), json({{"name", "fm"}, {"bundle", image_}}).dump(), "load");
  EXPECT_EQ(loaded.status, 201) << loaded.body;
  EXPECT_EQ(loaded.j()["loaded"]["task"], "fashion_mnist");
  const Http fm = curl("POST", s.url("/v1/adapters/fm/predict"), predict_image(), "fm");
  EXPECT_EQ(fm.status, 200) << fm.body;
  expect_error(curl("POST", s.url("/v1/adapters"), json({{"name", "fm"}, {"bundle", image_}}).dump(), "again"), 409, "already loaded");
  const Http gone = curl("DELETE", s.url("/v1/adapters/fm"), "", "unload");
  EXPECT_EQ(gone.status, 200) << gone.body;
  background.join();
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(json::parse(slurp(tmp_ / ("loop-" + std::to_string(i) + ".out")), nullptr, false).value("text", std::string("?")),
              de_expected)
        << i;
  }
  expect_error(curl("POST", s.url("/v1/adapters/fm/predict"), predict_image()), 404, "no adapter 'fm' is loaded");
  expect_error(curl("DELETE", s.url("/v1/adapters/fm")), 404, "no adapter 'fm'");

  // Bad bundles: a flipped byte, one signed by an untrusted key, a missing file, a wrong name.
  std::string flipped = slurp(image_);
  flipped[flipped.find("\"fashion_mnist\"") + 3] ^= 1;
  write_file_atomic(tmp_ / "flipped.m4adapter", flipped);
  expect_error(curl("POST", s.url("/v1/adapters"), json({{"name", "x"}, {"bundle", (tmp_ / "flipped.m4adapter").string()}}).dump()), 422,
               "flipped.m4adapter: manifest.json.minisig: signature does not verify");
  ASSERT_EQ(m4({"keygen", "--out", (tmp_ / "other").string()}).code, 0);
  const std::string other = (tmp_ / "other.m4adapter").string();
  ASSERT_EQ(m4({"export", "--adapter", (tmp_ / "fm.safetensors").string(), "--task",
                (repo_dir() / "configs" / "tasks" / "fashion_mnist.yaml").string(), "--firmware", fw_, "--key",
                (tmp_ / "other.key").string(), "--out", other, "--log-level", "warn"}).code, 0);
  expect_error(curl("POST", s.url("/v1/adapters"), json({{"name", "x"}, {"bundle", other}}).dump()), 422,
               "which is not one of the trusted keys");
  expect_error(curl("POST", s.url("/v1/adapters"), json({{"name", "x"}, {"bundle", "/nonexistent.m4adapter"}}).dump()), 422,
               "/nonexistent.m4adapter: no such bundle");
  expect_error(curl("POST", s.url("/v1/adapters"), json({{"name", "../x"}, {"bundle", image_}}).dump()), 400, "adapter name '../x'");

  // Bad requests.
  expect_error(curl("POST", s.url("/v1/adapters/de/predict"), "{\"text\": "), 400, "not valid JSON");
  expect_error(curl("POST", s.url("/v1/adapters/de/predict"), std::string(5000, '[') + std::string(5000, ']')), 400, "nests deeper than 32");
  expect_error(curl("POST", s.url("/v1/adapters/de/predict"), "{\"txt\": \"a\"}"), 400, "unknown key \"txt\"");
  expect_error(curl("POST", s.url("/v1/adapters/de/predict"), json({{"input", {{"format", "png"}, {"base64", "!!!"}}}}).dump()), 400,
               "not valid base64");
  expect_error(curl("POST", s.url("/v1/adapters/de/predict"), json({{"input", {{"format", "png"}, {"base64", "aGVsbG8="}}}}).dump()),
               422, "input (png)");
  expect_error(curl("GET", s.url("/v1/nothing")), 404, "no route GET /v1/nothing");
  // Wrong modality: text for an image task.
  ASSERT_EQ(curl("POST", s.url("/v1/adapters"), json({{"name", "fm"}, {"bundle", image_}}).dump()).status, 201);
  expect_error(curl("POST", s.url("/v1/adapters/fm/predict"), predict_text("a shoe")), 422, "image");

  // Still serving, and what it served is right.
  const Http health = curl("GET", s.url("/v1/health"));
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(health.j()["adapters"], 2);
  EXPECT_EQ(curl("POST", s.url("/v1/adapters/de/predict"), predict_text("Guten Morgen")).j()["text"], de_expected);
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST_F(ServeCli, AnOversizedBodyIs413AndStartUpErrorsAreOneLine) {
  ServeProcess s({"--firmware", fw_, "--pubkey", key_ + ".pub", "--bundle", "de=" + text_, "--max-body-mib", "1"}, tmp_.path());
  ASSERT_GT(s.port(), 0) << s.first_line() << s.log();
  expect_error(curl("POST", s.url("/v1/adapters/de/predict"), predict_text(std::string(2 << 20, 'a'))), 413, "over the server's limit");
  EXPECT_EQ(curl("GET", s.url("/v1/health")).status, 200);
  EXPECT_EQ(s.stop(), 0) << s.log();

  expect_one_line_error(m4({"serve", "--firmware", fw_}), {"serve needs --pubkey"});
  expect_one_line_error(m4({"serve", "--firmware", fw_, "--pubkey", key_ + ".pub", "--bundle", "nameless"}), {"NAME=B.m4adapter"});
  const std::string other_fw = demo("fw-other", "3");
  expect_one_line_error(m4({"serve", "--firmware", other_fw, "--pubkey", key_ + ".pub", "--bundle", "de=" + text_, "--port", "0"}),
                        {"de.m4adapter", "firmware binding"});
}

}  // namespace
}  // namespace m4::test
