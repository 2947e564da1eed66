#include "palette/decode_worker.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "palette/error.hpp"

extern char** environ;

namespace palette {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kHelloMagic = 0x31574c50;    // "PLW1"
constexpr std::uint32_t kRequestMagic = 0x51574c50;  // "PLWQ"
constexpr std::uint32_t kReplyMagic = 0x52574c50;    // "PLWR"

struct RequestHeader {
  std::uint32_t magic = kRequestMagic;
  std::int32_t size = 0;
  std::int32_t alpha_threshold = 0;
  std::uint32_t reserved = 0;
  std::uint64_t max_pixels = 0;
  std::uint64_t bytes = 0;  // encoded bytes that follow
};

struct ReplyHeader {
  std::uint32_t magic = kReplyMagic;
  std::uint32_t ok = 0;  // 1: pixels follow; 0: the error text follows
  std::int32_t width = 0, height = 0, channels = 0;
  std::int32_t source_width = 0, source_height = 0;
  std::int32_t format = 0;
  std::uint64_t bytes = 0;
};

enum class Io { kOk, kClosed, kTimeout };

// Waits until `fd` is ready for `events` or the deadline passes.
Io wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Io::kTimeout;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000 * 1000)));
    if (r > 0) return Io::kOk;  // ready, or an error/hang-up the next call reports
    if (r < 0 && errno != EINTR) return Io::kClosed;
  }
}

Io send_all(int fd, const void* data, std::size_t size, Clock::time_point deadline) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const Io r = wait_ready(fd, POLLOUT, deadline);
      if (r != Io::kOk) return r;
      continue;
    }
    return Io::kClosed;
  }
  return Io::kOk;
}

Io recv_all(int fd, void* data, std::size_t size, Clock::time_point deadline) {
  auto* p = static_cast<std::uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::recv(fd, p, size, MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) return Io::kClosed;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      const Io r = wait_ready(fd, POLLIN, deadline);
      if (r != Io::kOk) return r;
      continue;
    }
    return Io::kClosed;
  }
  return Io::kOk;
}

// Blocking versions for the worker (its peer is its parent; no deadline).
bool write_full(int fd, const void* data, std::size_t size) {
  return send_all(fd, data, size, Clock::time_point::max()) == Io::kOk;
}
bool read_full(int fd, void* data, std::size_t size) {
  return recv_all(fd, data, size, Clock::time_point::max()) == Io::kOk;
}

// The process's current address-space size (the first field of /proc/self/statm, in pages).
std::size_t address_space_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long pages = 0;
  const int n = std::fscanf(f, "%lu", &pages);
  std::fclose(f);
  return n == 1 ? pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

bool starts_with(std::span<const std::uint8_t> bytes, const char* prefix) {
  if (!prefix || !*prefix) return false;
  const std::size_t n = std::strlen(prefix);
  return bytes.size() >= n && std::memcmp(bytes.data(), prefix, n) == 0;
}

constexpr std::size_t kMaxErrorBytes = 4096;

bool reply_error(int fd, std::string text) {
  if (text.size() > kMaxErrorBytes) text.resize(kMaxErrorBytes);
  ReplyHeader h;
  h.ok = 0;
  h.bytes = text.size();
  return write_full(fd, &h, sizeof h) && write_full(fd, text.data(), text.size());
}

}  // namespace

std::size_t decoder_memory_bytes(std::size_t max_input_bytes, std::uint64_t max_pixels) {
  const long double total = 2.0L * max_input_bytes + 24.0L * max_pixels + (256u << 20);
  const long double cap = static_cast<long double>(SIZE_MAX / 2);
  return static_cast<std::size_t>(total < cap ? total : cap);
}

// ---------------------------------------------------------------------------------------------
// The worker.

int run_decode_worker(int in_fd, int out_fd, std::size_t memory_bytes) {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizer runtimes reserve terabytes of shadow address space: no limit under them.
  memory_bytes = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
  memory_bytes = 0;
#endif
#endif
  if (memory_bytes > 0) {
    const std::size_t now = address_space_bytes();
    const rlimit as{now + memory_bytes, now + memory_bytes};
    if (now == 0 || ::setrlimit(RLIMIT_AS, &as) != 0) {
      std::fprintf(stderr, "palette decode-worker: cannot limit its memory: %s\n",
                   std::strerror(errno));
      return 1;
    }
  }
  const char* crash = std::getenv("PALETTE_TEST_DECODER_CRASH");
  const char* hang = std::getenv("PALETTE_TEST_DECODER_HANG");

  const std::uint32_t hello = kHelloMagic;
  if (!write_full(out_fd, &hello, sizeof hello)) return 1;
  bool trimmed = true;
  for (;;) {
    // Idle for a second after some work: give the decoders' buffers back to the system.
    pollfd p{in_fd, POLLIN, 0};
    const int r = ::poll(&p, 1, trimmed ? -1 : 1000);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      ::malloc_trim(0);
      trimmed = true;
      continue;
    }
    RequestHeader h;
    const Io got = recv_all(in_fd, &h, sizeof h, Clock::time_point::max());
    if (got == Io::kClosed) return 0;  // the pool closed its end: done
    if (h.magic != kRequestMagic) return 1;
    trimmed = false;
    std::unique_ptr<std::uint8_t[]> bytes(new (std::nothrow) std::uint8_t[h.bytes ? h.bytes : 1]);
    if (!bytes) {
      // Read the bytes past, so the next request starts where it should.
      std::uint8_t sink[1 << 16];
      for (std::uint64_t left = h.bytes; left > 0;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof sink));
        if (!read_full(in_fd, sink, n)) return 1;
        left -= n;
      }
      if (!reply_error(out_fd, "out of memory while decoding")) return 1;
      continue;
    }
    if (!read_full(in_fd, bytes.get(), h.bytes)) return 1;
    const std::span<const std::uint8_t> input(bytes.get(), h.bytes);
    if (starts_with(input, crash)) ::raise(SIGSEGV);
    if (starts_with(input, hang)) {
      for (;;) ::pause();
    }
    DecodeOptions options;
    options.size = h.size;
    options.alpha_threshold = h.alpha_threshold;
    options.max_pixels = h.max_pixels;
    std::string error;
    try {
      DecodedImage img = decode_image(input, options);
      bytes.reset();
      ReplyHeader reply;
      reply.ok = 1;
      reply.width = img.width;
      reply.height = img.height;
      reply.channels = img.channels;
      reply.source_width = img.source_width;
      reply.source_height = img.source_height;
      reply.format = static_cast<std::int32_t>(img.format);
      reply.bytes = img.pixels.size();
      if (!write_full(out_fd, &reply, sizeof reply) ||
          !write_full(out_fd, img.pixels.data(), img.pixels.size())) {
        return 1;
      }
      continue;
    } catch (...) {
      error = decode_error_text();
    }
    if (!reply_error(out_fd, error)) return 1;
  }
}

// ---------------------------------------------------------------------------------------------
// The pool.

struct DecoderPool::Impl {
  struct Worker {
    pid_t pid = -1;
    int fd = -1;
  };

  DecoderPoolOptions options;
  std::mutex mutex;
  std::condition_variable idle_cv;
  std::vector<Worker> workers;
  std::vector<std::size_t> idle;  // indices into workers
  std::size_t restarts = 0;

  void start(Worker& w) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      throw Error(std::string("cannot start a decoder process: socketpair: ") +
                  std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, sv[1], 0);
    posix_spawn_file_actions_adddup2(&actions, sv[1], 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group: Ctrl-C in the terminal stops the server, which lets the requests in
    // progress finish; their decoders must not die first.
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const std::size_t mb = (options.memory_bytes + (1u << 20) - 1) >> 20;
    std::vector<std::string> args = options.command;
    args.insert(args.end(), {"decode-worker", "--memory-mb", std::to_string(mb)});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int err = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(sv[1]);
    if (err != 0) {
      ::close(sv[0]);
      throw Error("cannot start a decoder process (" + args[0] +
                  " decode-worker): " + std::strerror(err));
    }
    w.pid = pid;
    w.fd = sv[0];
    std::uint32_t hello = 0;
    const Io r = recv_all(w.fd, &hello, sizeof hello, Clock::now() + std::chrono::seconds(30));
    if (r != Io::kOk || hello != kHelloMagic) {
      const std::string why = end(w, r == Io::kTimeout);
      throw Error("cannot start a decoder process (" + args[0] + " decode-worker): " + why);
    }
  }

  // Ends a worker that failed: kills it when it hung, reaps it, and says what happened.
  std::string end(Worker& w, bool timed_out) {
    if (w.fd >= 0) ::close(w.fd);
    w.fd = -1;
    if (w.pid <= 0) return "no process";
    int status = 0;
    if (timed_out) {
      ::kill(w.pid, SIGKILL);
      while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
      }
    } else {
      // It closed its end: it has died or is about to. Give it a moment, then make sure.
      pid_t r = 0;
      for (int i = 0; i < 200 && (r = ::waitpid(w.pid, &status, WNOHANG)) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (r == 0) {
        ::kill(w.pid, SIGKILL);
        while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
        }
      }
    }
    w.pid = -1;
    if (timed_out) {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g", options.timeout_seconds);
      return std::string("decoding timed out (more than ") + seconds + " s)";
    }
    if (WIFSIGNALED(status))
      return "decoder crashed (signal " + std::to_string(WTERMSIG(status)) + ")";
    if (WIFEXITED(status)) {
      return "decoder crashed (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
    }
    return "decoder crashed";
  }

  DecodedImage exchange(Worker& w, std::span<const std::uint8_t> bytes,
                        const DecodeOptions& options_in) {
    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(options.timeout_seconds));
    RequestHeader h;
    h.size = options_in.size;
    h.alpha_threshold = options_in.alpha_threshold;
    h.max_pixels = options_in.max_pixels;
    h.bytes = bytes.size();
    Io r = send_all(w.fd, &h, sizeof h, deadline);
    if (r == Io::kOk) r = send_all(w.fd, bytes.data(), bytes.size(), deadline);
    ReplyHeader reply;
    if (r == Io::kOk) r = recv_all(w.fd, &reply, sizeof reply, deadline);
    if (r != Io::kOk) throw_failed(w, r == Io::kTimeout);
    if (reply.ok == 0) {
      if (reply.magic != kReplyMagic || reply.bytes > kMaxErrorBytes) throw_failed(w, false, true);
      std::string text(reply.bytes, '\0');
      r = recv_all(w.fd, text.data(), text.size(), deadline);
      if (r != Io::kOk) throw_failed(w, r == Io::kTimeout);
      throw Error(text);
    }
    // The worker is ours, but a reply is checked before it sizes anything.
    const std::uint64_t side = static_cast<std::uint64_t>(std::max(1, options_in.size)) + 1;
    const bool valid = reply.magic == kReplyMagic && reply.ok == 1 && reply.width > 0 &&
                       reply.height > 0 && (reply.channels == 3 || reply.channels == 4) &&
                       reply.bytes == static_cast<std::uint64_t>(reply.width) *
                                          static_cast<std::uint64_t>(reply.height) *
                                          static_cast<std::uint64_t>(reply.channels) &&
                       reply.bytes <= 4 * side * side;
    if (!valid) throw_failed(w, false, true);
    DecodedImage img;
    img.width = reply.width;
    img.height = reply.height;
    img.channels = reply.channels;
    img.source_width = reply.source_width;
    img.source_height = reply.source_height;
    img.format = static_cast<ImageFormat>(reply.format);
    img.pixels.resize(reply.bytes);
    r = recv_all(w.fd, img.pixels.data(), img.pixels.size(), deadline);
    if (r != Io::kOk) throw_failed(w, r == Io::kTimeout);
    return img;
  }

  [[noreturn]] void throw_failed(Worker& w, bool timed_out, bool bad_reply = false) {
    if (bad_reply) ::kill(w.pid, SIGKILL);
    std::string why = end(w, timed_out);
    {
      std::lock_guard lock(mutex);
      ++restarts;
    }
    if (bad_reply) why = "decoder failed (a malformed reply)";
    throw Error(why);
  }
};

DecoderPool::DecoderPool(const DecoderPoolOptions& options) : impl_(std::make_unique<Impl>()) {
  if (options.command.empty() || options.command[0].empty()) {
    throw Error("no command to start the decoder processes with");
  }
  impl_->options = options;
  impl_->workers.resize(std::max<std::size_t>(1, options.workers));
  try {
    for (std::size_t i = 0; i < impl_->workers.size(); ++i) {
      impl_->start(impl_->workers[i]);
      impl_->idle.push_back(i);
    }
  } catch (...) {
    for (auto& w : impl_->workers) {
      if (w.pid > 0) impl_->end(w, true);
    }
    throw;
  }
}

DecoderPool::~DecoderPool() {
  // Closing our ends makes each worker read end of input and exit.
  for (auto& w : impl_->workers) {
    if (w.fd >= 0) ::close(w.fd);
    w.fd = -1;
  }
  for (auto& w : impl_->workers) {
    if (w.pid > 0) impl_->end(w, false);
  }
}

std::size_t DecoderPool::restarts() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->restarts;
}

DecodedImage DecoderPool::decode(std::span<const std::uint8_t> bytes,
                                 const DecodeOptions& options) {
  auto& s = *impl_;
  std::size_t index = 0;
  {
    std::unique_lock lock(s.mutex);
    s.idle_cv.wait(lock, [&] { return !s.idle.empty(); });
    index = s.idle.back();
    s.idle.pop_back();
  }
  struct Release {
    Impl& s;
    std::size_t index;
    ~Release() {
      {
        std::lock_guard lock(s.mutex);
        s.idle.push_back(index);
      }
      s.idle_cv.notify_one();
    }
  } release{s, index};
  Impl::Worker& w = s.workers[index];
  if (w.pid <= 0) s.start(w);
  return s.exchange(w, bytes, options);
}

}  // namespace palette
