#include "palette/inputs.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace palette {

void InputQueue::push(InputItem item) {
  {
    std::unique_lock lock(mutex_);
    const std::size_t position = offered_++;
    if (shard_count_ > 1 && position / shard_block_ % shard_count_ != shard_index_) return;
    // A producer far ahead of the pipeline (ten million files) must not hold every path: when
    // the queue is full it waits until half of it is taken (not for each item: a wake-up per
    // item would cost more than the item).
    if (items_.size() >= kMaxQueued) {
      space_.wait(lock, [&] { return items_.size() <= kMaxQueued / 2 || closed_; });
    }
    if (closed_) return;
    items_.push_back(std::move(item));
    ++pushed_;
  }
  cv_.notify_all();
}

void InputQueue::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  cv_.notify_all();
  space_.notify_all();
}

std::optional<std::pair<std::size_t, InputItem>> InputQueue::next() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return !items_.empty() || closed_; });
  if (items_.empty()) return std::nullopt;
  std::pair<std::size_t, InputItem> out{taken_++, std::move(items_.front())};
  items_.pop_front();
  const bool half = items_.size() == kMaxQueued / 2;  // what a waiting producer waits for
  lock.unlock();
  if (half) space_.notify_all();
  return out;
}

void InputQueue::set_shard(std::size_t index, std::size_t count, std::size_t block) {
  std::lock_guard lock(mutex_);
  shard_index_ = index;
  shard_count_ = count;
  shard_block_ = block;
}

std::size_t InputQueue::offered() {
  std::lock_guard lock(mutex_);
  return offered_;
}

bool InputQueue::ready() {
  std::lock_guard lock(mutex_);
  return !items_.empty() || closed_;
}

bool InputQueue::wait_ready(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return !items_.empty() || closed_; });
}

std::size_t InputQueue::pushed() {
  std::lock_guard lock(mutex_);
  return pushed_;
}

std::size_t InputQueue::taken() {
  std::lock_guard lock(mutex_);
  return taken_;
}

bool InputQueue::closed() {
  std::lock_guard lock(mutex_);
  return closed_;
}

bool has_image_extension(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::set<std::string> kExt = {"jpg", "jpeg", "png", "webp", "bmp",
                                             "tif", "tiff", "ppm", "pgm",  "pnm"};
  return kExt.count(ext) != 0;
}

namespace {

namespace fs = std::filesystem;

class Enumerator {
 public:
  Enumerator(const EnumerateOptions& o, InputQueue& q) : options_(o), queue_(q) {}

  void argument(const std::string& arg, std::istream& in) {
    if (arg == "-") {
      lines(in);
    } else if (arg.size() > 1 && arg[0] == '@') {
      std::ifstream list(arg.substr(1));
      if (!list) {
        fail(arg, std::string("cannot read list: ") + std::strerror(errno));
        return;
      }
      lines(list);
    } else {
      path(arg);
    }
  }

 private:
  // A list names paths: "@..." and "-" inside it are taken literally.
  void lines(std::istream& in) {
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      path(line);
    }
  }

  void path(const std::string& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      fail(p, std::strerror(errno));
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      visited_.clear();
      directory(p, st);
    } else {
      queue_.push(InputItem{p, p, nullptr, {}});
    }
  }

  void directory(const std::string& dir, const struct stat& st) {
    if (!visited_.insert({st.st_dev, st.st_ino}).second) return;  // symlink loop
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
      fail(dir, "cannot read directory: " + ec.message());
      return;
    }
    // Sorting siblings by name, with "/" appended to directories, gives the same order as
    // sorting the full paths of everything below `dir`. Only the names are kept (a directory of
    // a million images costs tens of MB here, not hundreds).
    struct Entry {
      std::string key;  // the name, "/" appended for a directory
      dev_t dev;
      ino_t ino;
    };
    std::vector<Entry> entries;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const std::string name = it->path().filename().string();
      if (!options_.hidden && !name.empty() && name[0] == '.') continue;
      std::string full = dir;
      if (full.empty() || full.back() != '/') full += '/';
      full += name;
      struct stat est {};
      if (::stat(full.c_str(), &est) != 0) continue;  // dangling link
      const bool is_dir = S_ISDIR(est.st_mode);
      if (!is_dir && !(S_ISREG(est.st_mode) && has_image_extension(name))) continue;
      entries.push_back({is_dir ? name + "/" : name, est.st_dev, est.st_ino});
    }
    if (ec) {
      fail(dir, "cannot read directory: " + ec.message());
      return;
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.key < b.key; });
    std::string prefix = dir;
    if (prefix.empty() || prefix.back() != '/') prefix += '/';
    for (auto& e : entries) {
      const bool is_dir = e.key.back() == '/';
      if (is_dir) e.key.pop_back();
      std::string full = prefix + e.key;
      std::string().swap(e.key);  // done with it: memory back as the walk goes
      if (is_dir) {
        struct stat st {};
        st.st_dev = e.dev;
        st.st_ino = e.ino;
        directory(full, st);
      } else {
        queue_.push(InputItem{full, full, nullptr, {}});
      }
    }
  }

  void fail(const std::string& name, const std::string& why) {
    queue_.push(InputItem{name, name, nullptr, why});
  }

  const EnumerateOptions& options_;
  InputQueue& queue_;
  std::set<std::pair<dev_t, ino_t>> visited_;
};

}  // namespace

void enumerate_inputs(const std::vector<std::string>& args, const EnumerateOptions& options,
                      InputQueue& queue, std::istream& in) {
  Enumerator e(options, queue);
  for (const auto& a : args) e.argument(a, in);
  queue.close();
}

}  // namespace palette
