#include "distd/io/run_command.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd, const std::string& output_path,
                          size_t output_cap, const std::string& input_path) {
  if (argv.empty()) throw Error(Errc::usage, "run_command: no program given");
  int fd = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("cannot create the command's output file", output_path, errno);
  std::vector<std::string> args = argv;
  std::vector<char*> av;
  for (auto& s : args) av.push_back(s.data());
  av.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fd);
    throw_errno("cannot fork", argv[0], e);
  }
  if (pid == 0) {
    int in = ::open(input_path.empty() ? "/dev/null" : input_path.c_str(), O_RDONLY);
    if (in < 0) _exit(126);
    ::dup2(in, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) _exit(126);
    ::execvp(av[0], av.data());
    _exit(127);
  }
  ::close(fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  CommandResult r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  try {
    std::string out = read_file(output_path, 1ull << 34, "command output");
    r.output = out.size() > output_cap ? out.substr(out.size() - output_cap) : std::move(out);
  } catch (const Error&) {
  }
  discard_file(output_path);
  return r;
}

std::string tail_lines(const std::string& text, int n) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  size_t start = end;
  for (int lines = 0; start > 0;) {
    if (text[start - 1] == '\n' && ++lines == n) break;
    --start;
  }
  return text.substr(start, end - start);
}

}  // namespace distd
