#!/usr/bin/env bash
# Example: palettes of a large photo folder on several nodes at once with MPI, one CSV.
#
#   sbatch scripts/slurm-mpi.sh /data/photos /scratch/palettes.csv
#
# One rank per GPU (here 4 nodes with 4 GPUs each): each rank decodes on its share of the node's
# cores and clusters on its GPU; rank 0 writes the file. If the job dies, submit it again: the
# rows written are kept (--resume). Edit the #SBATCH lines for your cluster; `srun --mpi=list`
# shows the MPI plugins Slurm offers (pmix for Open MPI 4 and later).
#SBATCH --job-name=palette-mpi
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=palette-mpi-%j.log
set -euo pipefail
input=${1:?usage: sbatch slurm-mpi.sh INPUT_DIR OUTPUT.csv}
output=${2:?usage: sbatch slurm-mpi.sh INPUT_DIR OUTPUT.csv}
palette=${PALETTE:-palette}

srun --mpi=pmix "$palette" extract "$input" -o "$output" \
  --threads "${SLURM_CPUS_PER_TASK:-4}" --resume
