#pragma once
// The few MPI calls a distributed extract needs, behind a seam: with PALETTE_MPI built in and
// the process launched by mpirun or srun, a world of ranks; otherwise a world of one and no MPI
// library touched. Every call is serialised by one lock (MPI_THREAD_SERIALIZED), so any thread
// may call them.

#include <optional>
#include <string>
#include <utility>

namespace palette::cli::mpi {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  ///< the rank among this node's ranks (its GPU), from the launcher
  bool distributed() const { return size > 1; }
};

/// Whether this process was started by an MPI launcher (Open MPI's OMPI_COMM_WORLD_SIZE,
/// PMI_SIZE, PMIX_RANK).
bool launched();
/// Where Open MPI's mpirun bound this process by its own default (a core each for 2 processes or
/// fewer, else a socket each: one decoding thread for `mpirun -n 2` on a node of 16 cores), not
/// as asked (--bind-to, --map-by ...:pe=N): this process's place among the node's processes and
/// their count (OMPI_COMM_WORLD_LOCAL_RANK, _LOCAL_SIZE), to take its share of the node's CPUs
/// instead. std::nullopt otherwise (asked for, another launcher, Open MPI 5's, or not bound).
std::optional<std::pair<int, int>> default_binding();
/// How many processes the nearest launcher says it started, this one included
/// (OMPI_COMM_WORLD_SIZE, else PMI_SIZE, else srun's SLURM_STEP_NUM_TASKS); 1 when none says.
int launched_size();

/// Whether this build can run across MPI ranks.
bool built_in();
/// The MPI library's own name and version ("Open MPI v4.1.4, ..."), first line.
std::string library_version();

/// MPI_Init, when built in and launched(); a world of one otherwise. The MPI library is loaded
/// (with palette's module palette-mpi.so) only then; throws palette::Error when it cannot be.
World start();
/// MPI_Finalize, if start() initialised MPI, once every message sent has left.
void finish();
/// Ends every rank of the job (MPI_Abort) with `code`; returns only when MPI is not running.
void abort(int code);

struct Message {
  int source = 0;
  int tag = 0;
  std::string bytes;
};

/// Sends bytes to a rank, without waiting for it to receive them (finish() waits for them).
void send(int dest, int tag, const std::string& bytes);
/// A message that has arrived from `source` (-1: any) with `tag` (-1: any), without waiting.
std::optional<Message> poll(int source, int tag);

/// The module's side of the seam (src/cli/mpi_module.cpp): what palette_mpi_api() returns.
inline constexpr int kApiVersion = 1;
struct Api {
  int version;
  std::string (*library_version)();
  World (*start)();
  void (*finish)();
  void (*abort)(int);
  void (*send)(int, int, const std::string&);
  std::optional<Message> (*poll)(int, int);
};

}  // namespace palette::cli::mpi
