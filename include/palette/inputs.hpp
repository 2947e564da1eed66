#pragma once
// Inputs as an ordered stream: command-line arguments expand (directories, @lists, stdin) into
// items in a fixed order, produced by one thread and consumed in order by the pipeline, so a
// million inputs can start flowing before the last directory is read.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <istream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace palette {

/// One input: a file to read, bytes already in memory (uploads), or a known failure.
struct InputItem {
  std::string name;                                       ///< what the `file` column shows
  std::string path;                                       ///< file to read, when `data` is null
  std::shared_ptr<const std::vector<std::uint8_t>> data;  ///< in-memory bytes, or null
  std::string error;                                      ///< set: the row is this error
};

/// A FIFO of inputs with indices: push() from a producer, next() from consumers, in order.
/// push() waits while kMaxQueued items are queued (so a list of millions of paths is read as
/// the run goes, in bounded memory); after close() it drops what it is given. Thread-safe.
class InputQueue {
 public:
  void push(InputItem item);
  /// No more items will come.
  void close();
  /// The next item and its index, blocking until one is pushed; nullopt once closed and empty.
  std::optional<std::pair<std::size_t, InputItem>> next();
  /// Whether next() would return at once.
  bool ready();
  /// ready(), waiting up to `timeout` for it.
  bool wait_ready(std::chrono::milliseconds timeout);
  /// Keeps only shard `index` of `count` (0 <= index < count): the items offered to push() are
  /// cut into blocks of `block` in the order they come, block b belongs to shard b % count, and
  /// the items of other shards are dropped at once. Call before the first push().
  void set_shard(std::size_t index, std::size_t count, std::size_t block);
  /// Items offered to push() so far, those of other shards included.
  std::size_t offered();
  /// Items pushed so far, and whether that is all of them.
  std::size_t pushed();
  /// Items handed out by next() so far.
  std::size_t taken();
  bool closed();

 private:
  static constexpr std::size_t kMaxQueued = 4096;
  std::mutex mutex_;
  std::condition_variable cv_, space_;
  std::deque<InputItem> items_;
  std::size_t taken_ = 0, pushed_ = 0, offered_ = 0;
  std::size_t shard_index_ = 0, shard_count_ = 1, shard_block_ = 1;
  bool closed_ = false;
};

/// Options of input expansion.
struct EnumerateOptions {
  bool hidden = false;  ///< descend into / list names starting with '.' inside directories
};

/// Whether a file name has an image extension a directory walk picks up (case-insensitive):
/// jpg jpeg png webp bmp tif tiff.
bool has_image_extension(const std::string& name);

/// Expands arguments into `queue` in order and closes it: a file is itself; a directory is every
/// image file below it, recursively, sorted by path (symbolic links followed, loops skipped);
/// "@list.txt" is the paths listed in it, one per line (each expanded the same way); "-" is the
/// paths read from `in`, one per line. Paths that do not exist, unreadable lists and
/// directories become items with an error, never silently dropped.
void enumerate_inputs(const std::vector<std::string>& args, const EnumerateOptions& options,
                      InputQueue& queue, std::istream& in);

}  // namespace palette
