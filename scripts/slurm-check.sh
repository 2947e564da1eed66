#!/usr/bin/env bash
# Runs palette's Slurm examples on a one-node Slurm cluster of this script's own, and checks that
# they write what one plain `palette extract` writes:
#   - scripts/slurm-array.sh: an array of 4 shards, one cancelled before it starts; the merge
#     refuses, naming that part; the shard is run again (SHARDS=4 --array=2) and a new merge
#     writes the file;
#   - scripts/slurm-mpi.sh (srun --mpi=pmix, 3 ranks): rank 2 killed after 40 rows fails the job;
#     submitted again (2 ranks) it finishes the file from the rows written;
#   - `srun -n 2 palette extract` without an MPI plugin: each task refuses (exit 2);
#   - with BUNDLE=palette-bundle.tar.gz (scripts/bundle.sh), scripts/slurm-mpi.sh again with the
#     bundle's palette (PALETTE=.../bin/palette): its MPI module loads this machine's Open MPI
#     under srun --mpi=pmix, through the bundle's own loader.
# Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge; not in setup.sh,
# as they would start daemons on a user's machine); without them it says so and exits 0. Its
# daemons (munged, slurmctld, slurmd) run with their own configuration, key, ports, socket and
# state in a temporary directory, and are stopped at the end.
#
#   [BUNDLE=TARBALL] scripts/slurm-check.sh [BUILD_DIR]   (default: build; built with MPI)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
palette=$(realpath "${1:-build}")/palette
bundle=${BUNDLE:+$(realpath "$BUNDLE")}
say() { echo "slurm-check: $*"; }
for cmd in munged mungekey slurmctld slurmd sbatch srun; do
  if ! command -v "$cmd" >/dev/null; then
    say "skipped: no $cmd (apt-get install slurm-wlm munge)"
    exit 0
  fi
done
if [ "$(id -u)" != 0 ]; then
  say "skipped: slurmd needs root"
  exit 0
fi
[ -x "$palette" ] || { say "no $palette (build first)"; exit 1; }

tmp=$(mktemp -d /tmp/palette-slurm.XXXXXX)
ok=0
stop_daemons() {
  for d in slurmd slurmctld munged; do
    [ -f "$tmp/$d.pid" ] && kill "$(cat "$tmp/$d.pid")" 2>/dev/null || true
  done
  sleep 1
  if [ "$ok" = 1 ]; then
    rm -rf "$tmp"
  else
    say "FAILED; daemons' logs and the jobs' output are in $tmp"
  fi
}
trap stop_daemons EXIT
fail() {
  say "FAILED: $*"
  tail -n 20 "$tmp"/work/*.log 2>/dev/null || true
  exit 1
}

# The cluster: one node of 8 CPUs (whatever the machine has), ports no default Slurm uses.
host=$(hostname -s)
mkdir -p "$tmp/ctld" "$tmp/slurmd" "$tmp/work" "$tmp/in"
mungekey --create --keyfile="$tmp/munge.key"
munged --force --socket="$tmp/munge.socket" --key-file="$tmp/munge.key" \
  --pid-file="$tmp/munged.pid" --log-file="$tmp/munged.log" --seed-file="$tmp/munged.seed"
cat >"$tmp/slurm.conf" <<EOF
ClusterName=palettecheck
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16917
SlurmdPort=16918
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$tmp/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
StateSaveLocation=$tmp/ctld
SlurmdSpoolDir=$tmp/slurmd
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 State=UNKNOWN
PartitionName=check Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld
slurmd
for _ in $(seq 60); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 0.5
done
[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || fail "the node did not come up"

# Waits until no job is left (this cluster runs only ours).
wait_idle() {
  for _ in $(seq 600); do
    [ -z "$(squeue -h 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  squeue
  fail "jobs still queued after 5 minutes"
}
state() { scontrol show job "$1" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }

# The inputs: the samples many times over, and one file that is no image. The outputs go in
# directories with a space in their names (the MPI job's, one its script makes).
for i in $(seq -w 0 59); do
  for f in samples/*.jpg samples/*.png; do ln -s "$repo/$f" "$tmp/in/$i-$(basename "$f")"; done
done
printf 'not an image' >"$tmp/in/30-broken.jpg"
inputs=$(find "$tmp/in" -mindepth 1 | wc -l)
mkdir -p "$tmp/want-sheets" "$tmp/out dir/sheets"
for run in want want-combined; do
  options=(-q)
  [ "$run" = want ] || options+=(--combined --contact-sheet "$tmp/want-sheets/s.png")
  rc=0
  "$palette" extract "$tmp/in" -o "$tmp/$run.csv" "${options[@]}" || rc=$?
  [ "$rc" = 1 ] || fail "a plain run ($run) exited $rc, not 1 (one broken input)"
done
export PALETTE=$palette
cd "$tmp/work"

# 1. The job array: shard 2 cancelled before it starts. With --combined (the merge clusters the
# colours the parts counted) and contact sheets (every task draws its blocks' sheets).
array_options=(--shard-block 100 --combined --contact-sheet "$tmp/out dir/sheets/s.png")
job=$(sbatch --parsable --hold --array=0-3 --cpus-per-task=2 "$repo/scripts/slurm-array.sh" \
  "$tmp/in" "$tmp/out dir/a.csv" "${array_options[@]}")
scancel "${job}_2"
scontrol release "$job"
wait_idle
grep -q "shard 2 of 4 is missing" palette-merge-*.log ||
  fail "the merge did not name the missing part"
[ ! -e "$tmp/out dir/a.csv" ] || fail "the merge wrote an output without part 2"
SHARDS=4 sbatch --parsable --array=2 --cpus-per-task=2 "$repo/scripts/slurm-array.sh" \
  "$tmp/in" "$tmp/out dir/a.csv" "${array_options[@]}" >/dev/null
wait_idle
cmp "$tmp/out dir/a.csv" "$tmp/want-combined.csv" ||
  fail "the merged array's output differs from a plain run's"
for sheet in "$tmp"/want-sheets/*.png; do
  cmp "$sheet" "$tmp/out dir/sheets/$(basename "$sheet")" || fail "$(basename "$sheet") differs"
done
[ "$(ls "$tmp/out dir/sheets" | wc -l)" = "$(ls "$tmp/want-sheets" | wc -l)" ] ||
  fail "the array drew other contact sheets than a plain run"
say "job array: 4 shards, one run again, merged: identical to a plain run ($inputs inputs," \
  "--combined, $(ls "$tmp/want-sheets" | wc -l) contact sheets)"

# 2. MPI through srun: a rank killed, then the job submitted again.
if "$palette" info | grep -q "^mpi: mpirun"; then
  job=$(PALETTE_TEST_KILL_RANK_AFTER=2:40 sbatch --parsable --nodes=1 --ntasks-per-node=3 \
    --gpus-per-node=0 --cpus-per-task=1 "$repo/scripts/slurm-mpi.sh" "$tmp/in" \
    "$tmp/mpi out/m.csv")
  wait_idle
  [ "$(state "$job")" = FAILED ] || fail "the job with a killed rank ended $(state "$job")"
  grep -q "task 2" "palette-mpi-$job.log" || fail "no line names the killed rank (task 2)"
  rows=$(($(wc -l <"$tmp/mpi out/m.csv") - 1))
  [ "$rows" -lt "$inputs" ] || fail "the failed job wrote every row"
  job=$(sbatch --parsable --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 \
    "$repo/scripts/slurm-mpi.sh" "$tmp/in" "$tmp/mpi out/m.csv")
  wait_idle
  [ "$(state "$job")" = COMPLETED ] || fail "the job submitted again ended $(state "$job")"
  cmp "$tmp/mpi out/m.csv" "$tmp/want.csv" ||
    fail "the MPI job's output differs from a plain run's"
  say "srun --mpi=pmix: rank 2 killed (the job failed, $rows rows kept), submitted again:" \
    "identical to a plain run"
else
  say "MPI part skipped: $palette was built without MPI"
fi

# 3. srun without an MPI plugin: two processes that know nothing of each other refuse.
set +e
srun -n 2 "$palette" extract "$tmp/in" -o "$tmp/mpi out/s.csv" 2>"$tmp/work/srun.err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "srun -n 2 without MPI exited $rc, not 2"
grep -q "one of 2 processes started by mpirun or srun" "$tmp/work/srun.err" ||
  fail "srun -n 2 without MPI: $(cat "$tmp/work/srun.err")"
[ ! -e "$tmp/mpi out/s.csv" ] || fail "srun -n 2 without MPI wrote an output"
say "srun -n 2 without MPI: both refuse (exit 2)"

# 4. The GPU bundle's palette (CPU backend here) under the MPI script.
if [ -n "$bundle" ]; then
  mkdir -p "$tmp/bundle"
  tar xzf "$bundle" -C "$tmp/bundle" || fail "cannot unpack $bundle"
  if [ -e "$tmp/bundle/palette/lib/palette/palette-mpi.so" ]; then
    job=$(PALETTE="$tmp/bundle/palette/bin/palette" sbatch --parsable --nodes=1 \
      --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 "$repo/scripts/slurm-mpi.sh" \
      "$tmp/in" "$tmp/mpi out/b.csv")
    wait_idle
    [ "$(state "$job")" = COMPLETED ] || fail "the bundle's MPI job ended $(state "$job")"
    cmp "$tmp/mpi out/b.csv" "$tmp/want.csv" ||
      fail "the bundle's MPI job's output differs from a plain run's"
    say "the bundle under srun --mpi=pmix (2 ranks): identical to a plain run"
  else
    say "bundle part skipped: $bundle has no MPI module"
  fi
fi
ok=1
say "ok"
