#include "distribute.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"

namespace palette::cli {
namespace {

enum Tag : int { kRequest = 1, kChunk = 2, kRows = 3, kDone = 4, kColours = 5 };

// --combined: a rank's colours (ColorWeights::serialize(), about 2 bytes a colour) go to rank 0
// in messages of at most this many bytes.
constexpr std::size_t kColourBytesPerMessage = std::size_t{1} << 18;

// Waiting for something to arrive by polling: short naps while things happen, longer ones (up to
// half a millisecond) while nothing does, so an idle rank costs no CPU and a busy one no latency.
class Backoff {
 public:
  void reset() { us_ = 5; }
  void nap() {
    std::this_thread::sleep_for(std::chrono::microseconds(us_));
    us_ = std::min(us_ * 2, 500);
  }

 private:
  int us_ = 5;
};

// Runs a thread's body; an exception there (a disk full under rank 0's writes, say) ends the
// whole job with its reason, as no rank can go on without the others.
template <class F>
void or_abort(F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    mpi::abort(kExitFailed);
    throw;
  }
}

// Messages between ranks: little-endian integers and length-prefixed strings.
class Encoder {
 public:
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) s_ += static_cast<char>(v >> (8 * i) & 0xFF);
  }
  void str(std::string_view v) {
    u64(v.size());
    s_.append(v);
  }
  std::string take() {
    std::string out = std::move(s_);
    s_.clear();
    return out;
  }

 private:
  std::string s_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view s) : s_(s) {}
  std::uint64_t u64() {
    need(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(s_[at_ + i])} << (8 * i);
    at_ += 8;
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    need(n);
    std::string v(s_.substr(at_, n));
    at_ += n;
    return v;
  }

 private:
  void need(std::uint64_t n) const {
    if (n > s_.size() - at_) throw Error("a malformed message between MPI ranks");
  }
  std::string_view s_;
  std::size_t at_ = 0;
};

// Consecutive inputs, from index `start` on. No items: there are no more.
struct Chunk {
  std::size_t start = 0;
  std::vector<InputItem> items;
};

std::string encode(const Chunk& c) {
  Encoder e;
  e.u64(c.start);
  e.u64(c.items.size());
  for (const auto& item : c.items) {
    e.str(item.name);
    e.str(item.path);
    e.str(item.error);
  }
  return e.take();
}

Chunk decode_chunk(std::string_view bytes) {
  Decoder d(bytes);
  Chunk c;
  c.start = d.u64();
  const std::uint64_t n = d.u64();
  for (std::uint64_t i = 0; i < n; ++i) {
    InputItem item;
    item.name = d.str();
    item.path = d.str();
    item.error = d.str();
    c.items.push_back(std::move(item));
  }
  return c;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

// A finished row: its input's index, its text as written, and whether it is an error row. Where
// its file could not be opened: its path and why (rank 0 checks that it cannot open it either).
struct Entry {
  std::size_t index;
  std::string text;
  bool failed;
  std::string unopened, why;
};

// The global index and the path of each row of a rank's own pipeline, whose inputs are its
// chunks one after the other.
class IndexMap {
 public:
  struct Input {
    std::size_t index;
    std::string path;
  };
  void add(std::size_t start, std::vector<std::string> paths) {
    std::lock_guard lock(mutex_);
    if (!paths.empty()) segments_.push_back({start, std::move(paths)});
  }
  Input next() {
    std::lock_guard lock(mutex_);
    if (segments_.empty()) throw Error("a row without an input (distributed extract)");
    Segment& front = segments_.front();
    Input input{front.start + used_, std::move(front.paths[used_])};
    if (++used_ == front.paths.size()) {
      segments_.pop_front();
      used_ = 0;
    }
    return input;
  }

 private:
  struct Segment {
    std::size_t start;
    std::vector<std::string> paths;
  };
  std::mutex mutex_;
  std::deque<Segment> segments_;
  std::size_t used_ = 0;
};

// Formats a rank's rows (in its own input order) and hands them on with their global indices.
class EntrySink final : public RowSink {
 public:
  EntrySink(const RowFormatter& formatter, IndexMap& map,
            std::function<void(std::vector<Entry>&)> out,
            const std::function<void(std::size_t, const Row&)>& on_row)
      : formatter_(formatter), map_(map), out_(std::move(out)), on_row_(on_row) {}
  void write(const std::vector<Row>& rows) override {
    std::vector<Entry> entries;
    for (const auto& row : rows) {
      if (!row.ok()) spdlog::warn("{}: {}", row.file, row.error);
      IndexMap::Input input = map_.next();
      Entry& e = entries.emplace_back(Entry{input.index, formatter_.row(row), !row.ok(), {}, {}});
      if (row.error.starts_with(kCannotOpen)) {
        e.unopened = std::move(input.path);
        e.why = row.error.substr(kCannotOpen.size());
      }
      if (on_row_) on_row_(e.index, row);
    }
    out_(entries);
  }

 private:
  const RowFormatter& formatter_;
  IndexMap& map_;
  std::function<void(std::vector<Entry>&)> out_;
  const std::function<void(std::size_t, const Row&)>& on_row_;
};

// Feeds chunks to a rank's own pipeline, a chunk at a time and only when the pipeline is close
// to running dry, so that no rank holds inputs another could be working on.
void feed(InputQueue& local, IndexMap& map, std::size_t low,
          const std::function<std::optional<Chunk>()>& next_chunk, const std::atomic<bool>* stop) {
  Backoff wait;
  while (!(stop && *stop)) {
    wait.reset();
    while (local.pushed() - local.taken() > low && !(stop && *stop)) wait.nap();
    std::optional<Chunk> c = next_chunk();
    if (!c) break;
    std::vector<std::string> paths;
    for (const auto& item : c->items) paths.push_back(item.path);
    map.add(c->start, std::move(paths));
    for (auto& item : c->items) local.push(std::move(item));
  }
  local.close();
}

// Rank 0's rows in input order: entries from any rank, written as soon as they are next.
class Reorder {
 public:
  Reorder(std::size_t first, std::function<void(const std::string&, std::size_t)> write)
      : next_(first), write_(std::move(write)) {}
  void add(std::vector<Entry>& entries) {
    std::lock_guard lock(mutex_);
    for (auto& e : entries) waiting_.emplace(e.index, std::move(e));
    std::string text;
    std::size_t rows = 0;
    for (auto it = waiting_.begin(); it != waiting_.end() && it->first == next_;
         it = waiting_.erase(it)) {
      text += it->second.text;
      ++rows;
      ++next_;
      failed_ += it->second.failed;
    }
    if (rows > 0) {
      write_(text, rows);
      written_.notify_all();
    }
  }
  // Waits until the next row to write is past index - window (or `stop`, or 100 ms passed).
  void wait_below(std::size_t index, std::size_t window, const std::atomic<bool>* stop) {
    std::unique_lock lock(mutex_);
    written_.wait_for(lock, std::chrono::milliseconds(100),
                      [&] { return index < next_ + window || (stop && *stop); });
  }
  std::size_t next() {
    std::lock_guard lock(mutex_);
    return next_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable written_;
  std::map<std::size_t, Entry> waiting_;
  std::size_t next_;
  std::size_t failed_ = 0;
  std::function<void(const std::string&, std::size_t)> write_;
};

// Rank 0's chunks not yet handed out, in input order.
class Pool {
 public:
  void push(Chunk c) {
    {
      std::lock_guard lock(mutex_);
      chunks_.push_back(std::move(c));
    }
    cv_.notify_all();
  }
  void finish(bool drop) {
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
      if (drop) chunks_.clear();
    }
    cv_.notify_all();
  }
  // The next chunk; an empty one when there are no more; nullopt when none is ready and
  // `wait` is false.
  std::optional<Chunk> pop(bool wait) {
    std::unique_lock lock(mutex_);
    if (wait) cv_.wait(lock, [&] { return finished_ || !chunks_.empty(); });
    if (chunks_.empty()) {
      if (finished_) return Chunk{};
      return std::nullopt;
    }
    Chunk c = std::move(chunks_.front());
    chunks_.pop_front();
    return c;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Chunk> chunks_;
  bool finished_ = false;
};

std::string encode_rows(const std::vector<Entry>& entries) {
  Encoder e;
  e.u64(entries.size());
  for (const auto& x : entries) {
    e.u64(x.index);
    e.u64(x.failed ? 1 : 0);
    e.str(x.text);
    e.str(x.unopened);
    e.str(x.why);
  }
  return e.take();
}

// Test hooks (tests/e2e/test_cli_mpi.cpp), each "R:N" with R > 0:
// - PALETTE_TEST_WAIT_FOR_RANK: rank 0 starts its own share only once rank R has been handed
//   more than N inputs (or all there are), so that rank R surely does some of the work (else, on
//   a loaded machine, rank 0 may do it all before rank R has asked for any);
// - PALETTE_TEST_KILL_RANK_AFTER: rank R dies by SIGKILL once it has sent N rows, before it
//   sends another, a rank dying mid-run on cue. It waits for rank R as the hook above does, so
//   that rank R surely dies holding rows it never sent.
struct RankHook {
  int rank = -1;
  std::size_t after = 0;
  bool on(int size) const { return rank > 0 && rank < size; }
};

RankHook rank_hook(const char* name) {
  RankHook h;
  const char* v = std::getenv(name);
  if (v && std::strchr(v, ':') && std::atoi(v) > 0) {
    h.rank = std::atoi(v);
    h.after = static_cast<std::size_t>(std::atol(std::strchr(v, ':') + 1));
  }
  return h;
}

RankHook wait_hook() {
  const RankHook kill = rank_hook("PALETTE_TEST_KILL_RANK_AFTER");
  return kill.rank > 0 ? kill : rank_hook("PALETTE_TEST_WAIT_FOR_RANK");
}

std::string describe(const Backend& backend) {
  return fmt::format("{} on {}", backend.name(), backend.device());
}

// A rank's last word: its counts, how many colour messages it sent, its pipeline's time, its
// backend.
std::string encode_done(const DistributedStats& stats, std::uint64_t colour_messages,
                        const Backend& backend) {
  Encoder e;
  e.u64(stats.images);
  e.u64(stats.failed);
  e.u64(colour_messages);
  e.u64(static_cast<std::uint64_t>(std::llround(stats.local.wall * 1e6)));
  e.str(describe(backend));
  return e.take();
}

std::vector<Entry> decode_rows(std::string_view bytes) {
  Decoder d(bytes);
  std::vector<Entry> out(d.u64());
  for (auto& x : out) {
    x.index = d.u64();
    x.failed = d.u64() != 0;
    x.text = d.str();
    x.unopened = d.str();
    x.why = d.str();
  }
  return out;
}

}  // namespace

DistributedStats run_root_rank(const mpi::World& world, InputQueue& inputs, std::size_t first,
                               Backend& backend, const PipelineOptions& options,
                               const RowFormatter& formatter, const DistributedOptions& d,
                               const std::function<void(const std::string&, std::size_t)>& write,
                               const std::atomic<bool>* stop) {
  Reorder reorder(first, write);
  Pool pool;
  DistributedStats stats;
  const auto stopped = [&] { return stop && *stop; };

  // Chunks of consecutive inputs, never more than the window ahead of the rows written.
  std::thread chunker([&] {
    or_abort([&] {
      std::size_t next_index = first;
      while (!stopped()) {
        if (next_index >= reorder.next() + d.window) {
          reorder.wait_below(next_index, d.window, stop);
          continue;
        }
        auto item = inputs.next();
        if (!item) break;
        Chunk c;
        c.start = item->first;
        c.items.push_back(std::move(item->second));
        const auto full = [&] {
          return d.aligned ? (c.start + c.items.size()) % d.chunk == 0 : c.items.size() >= d.chunk;
        };
        while (!full() && (d.aligned || inputs.ready())) {
          auto more = inputs.next();
          if (!more) break;
          c.items.push_back(std::move(more->second));
        }
        next_index = c.start + c.items.size();
        pool.push(std::move(c));
      }
      pool.finish(stopped());
    });
  });

  // The other ranks: requests for chunks, their rows, their colours (--combined), their last
  // word (which says how many colour messages they sent). A rank's colours are added once all
  // of its messages are there.
  std::size_t remote_images = 0, remote_failed = 0;
  struct Colours {
    std::string bytes;
    std::uint64_t received = 0, sent = 0;
    bool told = false;  // its last word is in
  };
  std::map<int, Colours> colours_of;
  ColorWeights remote_colours;
  std::map<int, std::string> host_of;  // from each rank's requests
  std::vector<RankReport> reports;
  const std::string host = host_name();
  const RankHook hook = wait_hook();
  std::size_t handed_to_awaited = 0;
  std::atomic<bool> awaited_holds_enough{false};
  std::thread comm([&] {
    or_abort([&] {
      Backoff idle;
      std::deque<int> waiting;
      int done = 0;
      const auto take_colours = [&](int rank) {
        auto it = colours_of.find(rank);
        if (it == colours_of.end() || !it->second.told || it->second.received < it->second.sent) {
          return;
        }
        if (!it->second.bytes.empty()) remote_colours.add_serialized(it->second.bytes);
        colours_of.erase(it);
      };
      while (done < world.size - 1 || !colours_of.empty()) {
        bool busy = false;
        while (auto m = mpi::poll(-1, -1)) {
          busy = true;
          if (m->tag == kRequest) {
            waiting.push_back(m->source);
            host_of[m->source] = Decoder(m->bytes).str();
          } else if (m->tag == kRows) {
            auto entries = decode_rows(m->bytes);
            // Before a row is written: a file a rank could not open but this one can would be
            // an error row no single process writes (a node without the inputs' file system).
            for (const Entry& e : entries) {
              if (!e.unopened.empty() && can_open(e.unopened)) {
                throw Error(fmt::format(
                    "rank {} on {} cannot open {} ({}), which rank 0 on {} can: every rank must "
                    "see the inputs at the same paths (a file system every node mounts, relative "
                    "paths from the same working directory); the rows written stay, and "
                    "--resume finishes the file",
                    m->source, host_of[m->source], e.unopened, e.why, host));
              }
            }
            reorder.add(entries);
          } else if (m->tag == kColours) {
            Colours& c = colours_of[m->source];
            c.bytes += m->bytes;
            ++c.received;
            take_colours(m->source);
          } else if (m->tag == kDone) {
            Decoder dec(m->bytes);
            RankReport& r = reports.emplace_back();
            r.rank = m->source;
            r.host = host_of[m->source];
            r.images = dec.u64();
            r.failed = dec.u64();
            remote_images += r.images;
            remote_failed += r.failed;
            Colours& c = colours_of[m->source];
            c.sent = dec.u64();
            r.seconds = static_cast<double>(dec.u64()) / 1e6;
            r.backend = dec.str();
            c.told = true;
            take_colours(m->source);
            ++done;
          }
        }
        while (!waiting.empty()) {
          std::optional<Chunk> c = pool.pop(false);
          if (!c) break;
          if (waiting.front() == hook.rank) {
            handed_to_awaited += c->items.size();
            if (handed_to_awaited > hook.after || c->items.empty()) awaited_holds_enough = true;
          }
          mpi::send(waiting.front(), kChunk, encode(*c));
          waiting.pop_front();
          busy = true;
        }
        if (busy) {
          idle.reset();
        } else {
          idle.nap();
        }
      }
    });
  });

  // Rank 0's own share.
  IndexMap map;
  InputQueue local;
  std::thread feeder([&] {
    feed(
        local, map, 2 * d.chunk,
        [&]() -> std::optional<Chunk> {
          if (hook.on(world.size)) {
            Backoff wait;
            while (!awaited_holds_enough && !stopped()) wait.nap();
          }
          auto c = pool.pop(true);
          if (!c || c->items.empty()) return std::nullopt;
          return c;
        },
        stop);
  });
  EntrySink sink(
      formatter, map, [&](std::vector<Entry>& e) { reorder.add(e); }, d.on_row);
  or_abort([&] { stats.local = run_pipeline(local, backend, options, sink, nullptr, stop); });
  if (stopped()) inputs.close();  // a chunker waiting for the next input ends
  feeder.join();
  chunker.join();
  comm.join();
  if (d.colours)
    remote_colours.visit([&](std::uint32_t c, std::uint64_t w) { d.colours->add(c, w); });
  stats.images = stats.local.images + remote_images;
  stats.failed = stats.local.failed + remote_failed;
  stats.ranks.push_back(
      {0, host, describe(backend), stats.local.images, stats.local.failed, stats.local.wall});
  stats.ranks.insert(stats.ranks.end(), reports.begin(), reports.end());
  std::sort(stats.ranks.begin(), stats.ranks.end(),
            [](const RankReport& a, const RankReport& b) { return a.rank < b.rank; });
  return stats;
}

DistributedStats run_worker_rank(const mpi::World& world, Backend& backend,
                                 const PipelineOptions& options, const RowFormatter& formatter,
                                 const DistributedOptions& d, const std::atomic<bool>* stop) {
  IndexMap map;
  InputQueue local;
  Encoder request;
  request.str(host_name());
  const std::string request_bytes = request.take();
  std::thread feeder([&] {
    feed(
        local, map, 2 * d.chunk,
        [&]() -> std::optional<Chunk> {
          mpi::send(0, kRequest, request_bytes);
          Backoff wait;
          while (!(stop && *stop)) {
            if (auto m = mpi::poll(0, kChunk)) {
              Chunk c = decode_chunk(m->bytes);
              if (c.items.empty()) return std::nullopt;
              return c;
            }
            wait.nap();
          }
          return std::nullopt;
        },
        stop);
  });
  const RankHook hook = rank_hook("PALETTE_TEST_KILL_RANK_AFTER");
  std::size_t sent = 0;
  EntrySink sink(
      formatter, map,
      [&](std::vector<Entry>& e) {
        const bool dies = hook.rank == world.rank && sent + e.size() > hook.after;
        if (dies) e.resize(hook.after - sent);
        if (!e.empty()) mpi::send(0, kRows, encode_rows(e));
        sent += e.size();
        if (dies) ::raise(SIGKILL);
      },
      d.on_row);
  DistributedStats stats;
  or_abort([&] { stats.local = run_pipeline(local, backend, options, sink, nullptr, stop); });
  feeder.join();
  stats.images = stats.local.images;
  stats.failed = stats.local.failed;
  std::uint64_t colour_messages = 0;
  if (d.colours && !(stop && *stop)) {
    const std::string bytes = d.colours->serialize();
    for (std::size_t at = 0; at < bytes.size(); at += kColourBytesPerMessage) {
      mpi::send(0, kColours, bytes.substr(at, kColourBytesPerMessage));
      ++colour_messages;
    }
    spdlog::debug("rank {}: its colours went to rank 0 in {} messages", world.rank,
                  colour_messages);
  }
  mpi::send(0, kDone, encode_done(stats, colour_messages, backend));
  return stats;
}

}  // namespace palette::cli
