#include "resume.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "console.hpp"
#include "palette/error.hpp"

namespace palette::cli {

std::string run_record_path(const std::string& output) { return output + ".palette-run.json"; }

namespace {

void write_record_json(const std::string& output, const nlohmann::ordered_json& j) {
  write_file_atomically(run_record_path(output), j.dump(2) + "\n");
}

}  // namespace

void write_run_record(const std::string& output, const std::vector<RecordedOption>& options) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& o : options) j[o.name] = o.value;
  write_record_json(output, j);
}

std::vector<std::pair<std::string, std::string>> read_run_record(const std::string& output) {
  std::ifstream in(run_record_path(output));
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::ordered_json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : j.items()) {
    if (!value.is_string()) return {};
    out.emplace_back(name, value.get<std::string>());
  }
  return out;
}

void complete_run_record(const std::string& output, std::size_t rows, std::size_t inputs) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [name, value] : read_run_record(output)) j[name] = value;
  j["rows"] = std::to_string(rows);
  j["inputs"] = std::to_string(inputs);
  j["complete"] = "yes";
  write_record_json(output, j);
}

std::string compare_run_record(const std::string& output, const std::vector<RecordedOption>& now) {
  const std::string path = run_record_path(output);
  std::ifstream in(path);
  if (!in) {
    throw UsageError("cannot resume " + output + ": no record of the run that wrote it (" + path +
                     ": " + std::strerror(errno) + ")");
  }
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw UsageError("cannot resume " + output + ": " + path + " is damaged");
  for (const auto& o : now) {
    const auto it = j.find(o.name);
    if ((it == j.end() && o.before.empty()) || (it != j.end() && !it->is_string())) {
      return o.name + " was not recorded, now " + o.value;
    }
    const std::string was = it == j.end() ? o.before : it->get<std::string>();
    if (was != o.value) {
      const bool plural = o.name.ends_with("s") && !o.name.starts_with("-");  // "the inputs"
      return o.name + (plural ? " were " : " was ") + was + ", now " + o.value;
    }
  }
  return {};
}

WrittenOutput read_written_output(
    const std::string& path, const RowFormatter& formatter, OutputFormat format,
    const std::function<void(std::size_t, std::string_view)>& on_row) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UsageError("cannot resume " + path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::string header = formatter.header();
  if (!header.empty()) header.pop_back();  // the line end
  WrittenOutput w;
  w.header = header.empty();
  RowSplitter splitter(format);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UsageError("cannot resume " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    splitter.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)),
                  [&](std::string_view line) {
                    if (!w.header) {
                      if (line != header) {
                        throw UsageError("cannot resume " + path +
                                         ": its header is not this run's (another format or -k?)");
                      }
                      w.header = true;
                      return;
                    }
                    on_row(w.rows, line);
                    ++w.rows;
                    if (formatter.is_error_row(line)) ++w.failed;
                  });
  }
  w.keep_bytes = w.header ? splitter.complete_bytes() : 0;
  return w;
}

}  // namespace palette::cli
