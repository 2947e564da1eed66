#!/usr/bin/env bash
# Example: palettes of a large photo folder with a Slurm job array, then one merged CSV.
#
#   sbatch scripts/slurm-array.sh /data/photos /scratch/palettes.csv [EXTRACT OPTION...]
#
# Each of the 16 tasks runs `palette extract` on its shard of the inputs (from the array task's
# environment) with one node's cores (and its GPU, if the partition gives one), into
# /scratch/palettes.part-I-of-16.csv. The task with the highest index queues the merge, a job that
# starts once every task of the array has ended and writes /scratch/palettes.csv. If a task did not
# finish (a node failed, its time ran out), the merge refuses, naming its part; run the missing
# shards again, with their number and the total, and a new merge follows them:
#
#   SHARDS=16 sbatch --array=3,7 scripts/slurm-array.sh /data/photos /scratch/palettes.csv
#
# (each goes on from the rows its part holds: --resume). Edit the #SBATCH lines for your cluster.
#SBATCH --job-name=palette
#SBATCH --array=0-15
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=16
#SBATCH --time=02:00:00
#SBATCH --output=palette-%A_%a.log
set -euo pipefail
usage="usage: sbatch slurm-array.sh INPUT_DIR OUTPUT.csv [EXTRACT OPTION...]"
input=${1:?$usage}
output=${2:?$usage}
shift 2
palette=${PALETTE:-palette}
: "${SLURM_ARRAY_TASK_ID:?run this script with sbatch: it is a job array}"

# Without SHARDS, palette takes the shard from the array (SLURM_ARRAY_TASK_ID of _COUNT);
# a partial array (SHARDS=16 sbatch --array=3,7 ...) names them.
shards=${SHARDS:-$SLURM_ARRAY_TASK_COUNT}
shard=()
if [ -n "${SHARDS:-}" ]; then shard=(--shard "$SLURM_ARRAY_TASK_ID/$SHARDS"); fi

# The merge is queued first, so that it runs even if this task fails (it then names the part);
# singleton: should this task be requeued and queue another, the two merges run one after the
# other, never at once.
if [ "$SLURM_ARRAY_TASK_ID" = "$SLURM_ARRAY_TASK_MAX" ]; then
  parts="$(printf '%q' "${output%.*}").part-*-of-$shards.$(printf '%q' "${output##*.}")"
  sbatch --dependency="afterany:$SLURM_ARRAY_JOB_ID,singleton" --job-name=palette-merge \
    --output="palette-merge-%j.log" \
    --wrap="$(printf '%q' "$palette") merge $parts -o $(printf '%q' "$output")"
fi

# Exit code 1: some images failed, and their error rows are in the part, which is whole.
mkdir -p "$(dirname "$output")"
status=0
"$palette" extract "$input" -o "$output" --threads "${SLURM_CPUS_PER_TASK:-16}" --resume \
  ${shard[@]+"${shard[@]}"} "$@" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
