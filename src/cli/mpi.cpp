#include "mpi.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <vector>

#include "palette/error.hpp"

namespace palette::cli::mpi {

bool launched() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

int launched_size() {
  // The launcher nearest this process says: mpirun (Open MPI's, or one setting PMI_SIZE, as
  // Hydra and srun --mpi=pmi2 do) inside an srun step counts its own processes, not the step's.
  // SLURM_STEP_NUM_TASKS is set in every task srun starts, whatever its --mpi, and never in a
  // batch script's own shell.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    if (const char* v = std::getenv(name); v && *v) return std::max(1, std::atoi(v));
  }
  return 1;
}

std::optional<std::pair<int, int>> default_binding() {
  const auto env = [](const char* name) -> std::string_view {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  // Open MPI 4's mpirun sets the first when it bound the process, the others when asked how.
  if (env("OMPI_MCA_orte_bound_at_launch") != "1") return std::nullopt;
  if (!env("OMPI_MCA_hwloc_base_binding_policy").empty()) return std::nullopt;
  if (env("OMPI_MCA_rmaps_base_mapping_policy").find("pe=") != std::string_view::npos) {
    return std::nullopt;
  }
  const int rank = std::atoi(std::string(env("OMPI_COMM_WORLD_LOCAL_RANK")).c_str());
  const int size = std::atoi(std::string(env("OMPI_COMM_WORLD_LOCAL_SIZE")).c_str());
  if (size < 1 || rank < 0 || rank >= size) return std::nullopt;
  return std::pair{rank, size};
}

#ifdef PALETTE_HAVE_MPI

namespace {

bool g_loaded = false;  // start() loaded the module (and the MPI library with it)

// Where palette-mpi.so is looked for: $PALETTE_MPI_MODULE, then beside the palette executable
// (the build tree, a bundle's libexec/), then in ../lib/palette/ from it.
std::vector<std::string> module_paths() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("PALETTE_MPI_MODULE"); env && *env) paths.emplace_back(env);
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&module_paths), &info) && info.dli_fname) {
    std::error_code ec;
    const auto exe = std::filesystem::canonical(info.dli_fname, ec);
    if (!ec) {
      paths.push_back((exe.parent_path() / "palette-mpi.so").string());
      paths.push_back(
          (exe.parent_path().parent_path() / "lib" / "palette" / "palette-mpi.so").string());
    }
  }
  return paths;
}

const Api& api() {
  static std::once_flag once;
  static const Api* loaded = nullptr;
  static std::string error;
  std::call_once(once, [] {
    error = "its MPI module palette-mpi.so was not found";
    for (const auto& path : module_paths()) {
      if (!std::filesystem::exists(path)) continue;
      // RTLD_GLOBAL: Open MPI's own components look for its symbols in the global scope.
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (!handle) {
        const char* why = dlerror();
        error = "cannot load " + path + ": " + (why ? why : "unknown error");
        continue;
      }
      auto entry = reinterpret_cast<const Api* (*)()>(dlsym(handle, "palette_mpi_api"));
      const Api* a = entry ? entry() : nullptr;
      if (!a || a->version != kApiVersion) {
        error = path + " is not this palette's MPI module";
        continue;
      }
      loaded = a;
      return;
    }
  });
  if (!loaded) throw Error("palette was built with MPI, but " + error);
  return *loaded;
}

}  // namespace

bool built_in() { return true; }

std::string library_version() {
  try {
    return api().library_version();
  } catch (const Error& e) {
    return std::string("unavailable: ") + e.what();
  }
}

World start() {
  if (!launched()) return World{};
  const Api& a = api();
  g_loaded = true;
  return a.start();
}

void finish() {
  if (g_loaded) api().finish();
}

void abort(int code) {
  if (g_loaded) api().abort(code);
}

void send(int dest, int tag, const std::string& bytes) {
  if (!g_loaded) throw Error("MPI is not running");
  api().send(dest, tag, bytes);
}

std::optional<Message> poll(int source, int tag) {
  if (!g_loaded) return std::nullopt;
  return api().poll(source, tag);
}

#else

bool built_in() { return false; }
std::string library_version() { return {}; }
World start() { return World{}; }
void finish() {}
void abort(int) {}
void send(int, int, const std::string&) { throw Error("palette was built without MPI"); }
std::optional<Message> poll(int, int) { return std::nullopt; }

#endif

}  // namespace palette::cli::mpi
