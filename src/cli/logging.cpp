#include <fcntl.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include "commands.hpp"
#include "console.hpp"
#include "palette/error.hpp"

namespace palette::cli {

Console& Console::instance() {
  static Console c;
  return c;
}

void Console::set_fd(int fd) {
  std::lock_guard lock(mutex_);
  fd_ = fd;
  tty_ = ::isatty(fd) == 1;
}

void Console::write_all(std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd_, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Console::print(std::string_view line) {
  std::lock_guard lock(mutex_);
  std::string out;
  if (!status_.empty()) out += "\r\033[K";
  out += line;
  if (!status_.empty()) out += status_;
  write_all(out);
}

void Console::status(const std::string& line) {
  std::lock_guard lock(mutex_);
  if (line == status_) return;
  std::string out = "\r\033[K" + line;
  if (status_.empty() && line.empty()) return;
  status_ = line;
  write_all(out);
}

namespace {

class ConsoleSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const bool color = Console::instance().is_terminal();
    std::string line = "palette: ";
    const char* on = "";
    switch (msg.level) {
      case spdlog::level::warn:
        on = "\033[33m";
        break;
      case spdlog::level::err:
      case spdlog::level::critical:
        on = "\033[31m";
        break;
      case spdlog::level::debug:
      case spdlog::level::trace:
        on = "\033[2m";
        break;
      default:
        break;
    }
    if (msg.level != spdlog::level::info) {
      if (color) line += on;
      const auto name = spdlog::level::to_string_view(msg.level);
      line.append(name.data(), name.size());
      if (color) line += "\033[0m";
      line += ": ";
    }
    line.append(msg.payload.data(), msg.payload.size());
    line += '\n';
    Console::instance().print(line);
  }
  void flush_() override {}
};

}  // namespace

void require_parent_directory(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return;
  throw UsageError("cannot write " + path + ": " + dir.string() +
                   (std::filesystem::exists(dir, ec) ? " is not a directory" : " does not exist"));
}

void write_output(const std::string& path, std::string_view text) {
  std::FILE* out = stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, &std::fclose);
  if (path != "-") {
    file.reset(std::fopen(path.c_str(), "wb"));
    if (!file) throw UsageError("cannot open output '" + path + "': " + std::strerror(errno));
    out = file.get();
  }
  if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0) {
    throw Error(std::string("cannot write output: ") + std::strerror(errno));
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes, bool sync) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("cannot write " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0;
  if (ok && sync) ok = ::fsync(::fileno(f)) == 0;
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("cannot write " + path + ": " + why);
  }
}

void setup_logging(int verbosity) {
  auto logger = std::make_shared<spdlog::logger>("palette", std::make_shared<ConsoleSink>());
  logger->set_level(verbosity < 0   ? spdlog::level::err
                    : verbosity > 0 ? spdlog::level::debug
                                    : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

StderrCapture::StderrCapture() {
  int fds[2];
  saved_ = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (saved_ < 0 || ::pipe2(fds, O_CLOEXEC) != 0) {
    if (saved_ >= 0) ::close(saved_);
    saved_ = -1;
    return;
  }
  Console::instance().set_fd(saved_);
  ::dup2(fds[1], 2);
  ::close(fds[1]);
  read_end_ = fds[0];
  reader_ = std::thread([fd = read_end_] {
    std::string pending;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      pending.append(buf, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
        if (nl > 0) spdlog::debug("(library) {}", pending.substr(0, nl));
        pending.erase(0, nl + 1);
      }
    }
    if (!pending.empty()) spdlog::debug("(library) {}", pending);
  });
}

StderrCapture::~StderrCapture() {
  if (saved_ < 0) return;
  ::dup2(saved_, 2);  // closes the pipe's last write end: the reader sees EOF
  reader_.join();
  ::close(read_end_);
  Console::instance().set_fd(2);
  ::close(saved_);
}

}  // namespace palette::cli
