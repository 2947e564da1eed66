#!/usr/bin/env bash
# Example: palettes of a large photo folder with a Slurm job array, then one merged CSV.
#
#   sbatch scripts/slurm-array.sh /data/photos /scratch/palettes.csv
#
# Each of the 16 tasks runs `palette extract --shard` (the shard comes from the array task's
# environment) on one node's cores (and its GPU, if the partition gives one); the merge runs as a
# job that starts when every task has finished. Edit the #SBATCH lines for your cluster.
#SBATCH --job-name=palette
#SBATCH --array=0-15
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=16
#SBATCH --time=02:00:00
#SBATCH --output=palette-%A_%a.log
set -euo pipefail
input=${1:?usage: sbatch slurm-array.sh INPUT_DIR OUTPUT.csv}
output=${2:?usage: sbatch slurm-array.sh INPUT_DIR OUTPUT.csv}
palette=${PALETTE:-palette}

# --resume: a task that is run again (requeued, or by hand) keeps the rows it wrote.
"$palette" extract "$input" -o "$output" --threads "${SLURM_CPUS_PER_TASK:-16}" --resume

# The last task to start queues the merge, to run once the whole array is done.
if [ "${SLURM_ARRAY_TASK_ID}" = "${SLURM_ARRAY_TASK_MAX:-15}" ]; then
  stem=${output%.*}
  ext=${output##*.}
  sbatch --dependency="afterok:${SLURM_ARRAY_JOB_ID}" --job-name=palette-merge \
    --wrap="$palette merge ${stem}.part-*-of-${SLURM_ARRAY_TASK_COUNT}.${ext} -o $output"
fi
