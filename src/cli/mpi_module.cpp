// The MPI side of the seam in mpi.hpp, built as a module of its own (palette-mpi.so, linked
// with the MPI library) that palette loads only when mpirun or srun started it: a run without
// MPI does not pay for loading Open MPI's dozen libraries.

#include <chrono>
#include <cstdlib>
#include <list>
#include <mutex>
#include <thread>

#include "mpi.hpp"
#include "palette/error.hpp"

// The C API only: no C++ bindings (Open MPI's and MPICH's switches).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

namespace palette::cli::mpi_module {
namespace {

using mpi::Message;
using mpi::World;

std::mutex g_mutex;
bool g_started = false;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

std::string library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string v(text, static_cast<std::size_t>(length));
  return v.substr(0, v.find_first_of(",\n"));
}

World start() {
  World w;
  std::lock_guard lock(g_mutex);
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
    throw Error("MPI_Init_thread failed");
  }
  g_started = true;
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size);
  // The node-local rank, for the GPU: this rank's place among the ranks that share its node's
  // memory (MPI-3's split by type, whatever the launcher); else what the launcher says (Open MPI,
  // MPICH/Hydra, Slurm).
  MPI_Comm node = MPI_COMM_NULL;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &node) ==
          MPI_SUCCESS &&
      node != MPI_COMM_NULL) {
    MPI_Comm_rank(node, &w.local_rank);
    MPI_Comm_free(&node);
  } else {
    w.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK",
                           env_int("MPI_LOCALRANKID", env_int("SLURM_LOCALID", 0)));
  }
  return w;
}

// Sends in flight: MPI_Isend, so that no rank ever blocks in a send while holding the lock
// (two ranks sending each other large messages at once would otherwise wait for ever).
struct Pending {
  MPI_Request request;
  std::string bytes;
};
std::list<Pending> g_pending;

void progress_sends() {
  for (auto it = g_pending.begin(); it != g_pending.end();) {
    int done = 0;
    MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
    it = done ? g_pending.erase(it) : std::next(it);
  }
}

void finish() {
  // Every message sent must have left before MPI goes.
  while (true) {
    {
      std::lock_guard lock(g_mutex);
      if (!g_started) return;
      progress_sends();
      if (g_pending.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::lock_guard lock(g_mutex);
  MPI_Finalize();
  g_started = false;
}

void abort(int code) {
  std::lock_guard lock(g_mutex);
  if (g_started) MPI_Abort(MPI_COMM_WORLD, code);
}

void send(int dest, int tag, const std::string& bytes) {
  std::lock_guard lock(g_mutex);
  if (bytes.size() > static_cast<std::size_t>(1) << 30) throw Error("MPI message over 1 GiB");
  Pending& p = g_pending.emplace_back();
  p.bytes = bytes;
  if (MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, dest, tag,
                MPI_COMM_WORLD, &p.request) != MPI_SUCCESS) {
    g_pending.pop_back();
    throw Error("MPI_Isend to rank " + std::to_string(dest) + " failed");
  }
  progress_sends();
}

std::optional<Message> poll(int source, int tag) {
  std::lock_guard lock(g_mutex);
  progress_sends();
  int flag = 0;
  MPI_Status status;
  MPI_Iprobe(source < 0 ? MPI_ANY_SOURCE : source, tag < 0 ? MPI_ANY_TAG : tag, MPI_COMM_WORLD,
             &flag, &status);
  if (!flag) return std::nullopt;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  Message m;
  m.source = status.MPI_SOURCE;
  m.tag = status.MPI_TAG;
  m.bytes.resize(static_cast<std::size_t>(count));
  MPI_Recv(m.bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  return m;
}

}  // namespace
}  // namespace palette::cli::mpi_module

extern "C" __attribute__((visibility("default"))) const palette::cli::mpi::Api* palette_mpi_api() {
  using namespace palette::cli::mpi_module;
  using palette::cli::mpi::Api;
  static const Api api{
      palette::cli::mpi::kApiVersion, library_version, start, finish, abort, send, poll};
  return &api;
}
