// The fixture of the `m4forge train` / `train-many` process tests: a tiny
// Path-2 task on a demo firmware, `mpirun -np 2` runs, and adapter comparison.
#pragma once

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>

#include "core/safetensors.h"
#include "tests/support/cli_test.h"
#include "tests/train/train_test_util.h"

namespace m4::test {

class TrainCli : public CliTest {
 protected:
  void SetUp() override {
    task_ = make_tiny_task(tmp_ / "repo");
    // Open MPI refuses root without these; CI runs as root in a container.
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  }
  std::vector<std::string> train_args(const std::string& run) {
    return {"train", task_.config.string(), "peft.lora.dropout=0.0", "--firmware", task_.firmware.string(), "--run-dir",
            (tmp_ / run).string(), "--checkpoint-every", "2", "--log-level", "warn"};
  }
  CliRun mpi(const std::vector<std::string>& args, const std::string& env = "") {
    std::string cmd = env + " mpirun -np 2 " + quote(cli_path());
    for (const auto& a : args) {
      cmd += ' ';
      cmd += quote(a);
    }
    const std::filesystem::path o = tmp_ / "mpi.out", e = tmp_ / "mpi.err";
    cmd += " >" + quote(o.string()) + " 2>" + quote(e.string());
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
  }
  static double max_diff(const std::filesystem::path& a, const std::filesystem::path& b, bool* identical) {
    SafetensorsFile fa = SafetensorsFile::open(a), fb = SafetensorsFile::open(b);
    double d = 0;
    *identical = fa.tensors().size() == fb.tensors().size();
    for (const auto& info : fa.tensors()) {
      const TensorInfo* other = fb.find(info.name);
      if (!other) return INFINITY;
      *identical = *identical && fa.bytes(info) == fb.bytes(*other);
      d = std::max(d, max_abs_diff(fa.tensor(info), fb.tensor(*other)));
    }
    return d;
  }
  TinyTask task_;
};

}  // namespace m4::test
