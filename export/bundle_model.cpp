// Bundles opened as task models (see bundle_model.h).
#include "export/bundle_model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "export/firmware_binding.h"
#include "firmware/firmware.h"
#include "prompts/prompt_template.h"

namespace m4 {
namespace fs = std::filesystem;

namespace {
// The adapter bytes as a file without touching the disk: an anonymous memfd,
// named through /proc/self/fd, which the adapter loader maps like any file.
class MemFile {
 public:
  explicit MemFile(std::string_view bytes) {
    fd_ = ::memfd_create("m4forge-adapter", MFD_CLOEXEC);
    M4_CHECK(fd_ >= 0, ErrorCode::kIo, "memfd_create failed: ", std::strerror(errno));
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      M4_CHECK(n > 0, ErrorCode::kIo, "cannot buffer the adapter: ", std::strerror(errno));
      done += static_cast<size_t>(n);
    }
  }
  ~MemFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  fs::path path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};
}  // namespace

BundleModel open_bundle_model(const Firmware& fw, const fs::path& bundle, const minisign::PublicKey& key) {
  BundleModel out;
  out.bundle = verify_bundle(bundle, &key);
  check_binding(out.bundle.manifest, fw, bundle.string());
  const BundleManifest& m = out.bundle.manifest;
  const std::string where = bundle.string() + ": manifest.json";
  M4_CHECK(m.prompt_template.is_object() && !m.prompt_id.empty(), ErrorCode::kBadInput, where,
           ": no prompt template (a model needs one)");
  const PromptTemplate prompt = parse_prompt_template(m.prompt_template, m.prompt_id, where);
  const TaskConfig task = task_config_from_json(m.task_config, prompt, where);
  const MemFile adapter(out.bundle.adapter);
  out.model = std::make_unique<TaskModel>(fw, task, prompt, m.labels, adapter.path());
  return out;
}

}  // namespace m4
