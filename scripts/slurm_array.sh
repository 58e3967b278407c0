#!/usr/bin/env bash
# One cell of a study per task of a SLURM job array, then the merge (docs/cluster.md).
#
#   n=$(.venv/bin/mosxav-bench run --config configs/ssl.yaml --count-cells)
#   job=$(sbatch --parsable --array=0-$((n - 1))%20 scripts/slurm_array.sh configs/ssl.yaml runs/ssl)
#   sbatch --dependency=afterany:$job --wrap ".venv/bin/mosxav-bench merge runs/ssl/shard-* --out runs/ssl/merged"
#
# Each task trains and scores the cells I, I+N, ... of the matrix (with --array=0-(n-1): exactly one) on one
# CPU thread into runs/ssl/shard-I; a task that is killed resumes from its last checkpoint when resubmitted.
#SBATCH --job-name=mosxav-bench
#SBATCH --cpus-per-task=1
#SBATCH --mem=6G
#SBATCH --time=04:00:00
#SBATCH --output=%x-%A_%a.log
set -euo pipefail
config=${1:?usage: sbatch --array=0-N scripts/slurm_array.sh CONFIG OUT}
out=${2:?usage: sbatch --array=0-N scripts/slurm_array.sh CONFIG OUT}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
exec .venv/bin/mosxav-bench run --config "$config" --out "$out/shard-$SLURM_ARRAY_TASK_ID" --shard slurm --jobs 1
