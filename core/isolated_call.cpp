// fork + pipe + waitpid (see isolated_call.h).
#include "core/isolated_call.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace m4 {

void run_isolated(const std::function<void()>& fn, int timeout_s, const std::string& where, const std::string& what) {
  int fds[2];
  M4_CHECK(::pipe(fds) == 0, ErrorCode::kIo, where, ": pipe failed: ", std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    M4_FAIL(ErrorCode::kIo, where, ": fork failed: ", std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::signal(SIGALRM, SIG_DFL);
    ::alarm(static_cast<unsigned>(timeout_s));
    int code = 0;
    std::string message;
    try {
      fn();
    } catch (const Error& e) {
      code = static_cast<int>(e.code());
      message = e.what();
    } catch (const std::exception& e) {
      code = static_cast<int>(ErrorCode::kInternal);
      message = where + ": " + e.what();
    }
    if (code) {
      const std::string out = std::to_string(code) + "\n" + message;
      size_t done = 0;
      while (done < out.size()) {
        const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
    }
    ::_exit(code ? 3 : 0);  // no atexit handlers, no static destructors of the parent's state
  }
  ::close(fds[1]);
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (reply.size() < (1 << 16)) reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFEXITED(status) && !reply.empty()) {
    const size_t nl = reply.find('\n');
    const int code = std::atoi(reply.substr(0, nl).c_str());
    throw Error(code > 0 ? static_cast<ErrorCode>(code) : ErrorCode::kInternal, nl == std::string::npos ? reply : reply.substr(nl + 1));
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
    M4_FAIL(ErrorCode::kBadInput, where, ": ", what, " did not finish in ", timeout_s,
            " s (the file is corrupt or hostile; it was read in a child process, which was stopped)");
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::sigabbrev_np(sig);
    M4_FAIL(ErrorCode::kBadInput, where, ": ", what, " crashed (signal ", sig, name ? std::string(", SIG") + name : std::string(),
            ") on this file: it is corrupt (it was read in a child process; nothing else was affected)");
  }
  M4_FAIL(ErrorCode::kBadInput, where, ": ", what, " failed in a child process (exit status ", WEXITSTATUS(status), ")");
}

}  // namespace m4
