#!/usr/bin/env bash
# Example: palettes of a large photo folder on several nodes at once with MPI, one CSV.
#
#   sbatch scripts/slurm-mpi.sh /data/photos /scratch/palettes.csv [EXTRACT OPTION...]
#
# One rank per GPU (here 4 nodes with 4 GPUs each): each rank decodes on its share of the node's
# cores and clusters on its GPU; rank 0 writes the file. If the job dies (a node failed, its time
# ran out), submit it again: it goes on from the rows written (--resume). Edit the #SBATCH lines
# for your cluster. palette must have MPI (`palette info` says): built with MPI on the cluster, or
# the GPU bundle (PALETTE=/path/to/palette/bin/palette sbatch ...) where the nodes have Open MPI
# 4.1 or 5.x (its libmpi.so.40 on their library path); either way an Open MPI that srun can
# start: `srun --mpi=list` shows the plugins Slurm offers (pmix for Open MPI 4 and later); srun
# without one starts processes that do not know of each other, and palette then refuses to run.
#SBATCH --job-name=palette-mpi
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=palette-mpi-%j.log
set -euo pipefail
usage="usage: sbatch slurm-mpi.sh INPUT_DIR OUTPUT.csv [EXTRACT OPTION...]"
input=${1:?$usage}
output=${2:?$usage}
shift 2
palette=${PALETTE:-palette}
cpus=${SLURM_CPUS_PER_TASK:-4}

# srun's own --cpus-per-task: from Slurm 22.05 on (its srun(1) says so), srun does not take the
# job's.
# Exit code 1: some images failed, and their error rows are in the output, which is whole.
mkdir -p "$(dirname "$output")"
status=0
srun --mpi=pmix --cpus-per-task="$cpus" "$palette" extract "$input" -o "$output" \
  --threads "$cpus" --resume "$@" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
