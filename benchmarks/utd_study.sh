#!/usr/bin/env bash
# The update-to-data study (benchmarks/results/utd_study_*): SDAC (N 4, K 64, T 10), DPMD (N 4, T 10) and SAC on
# Hopper-v4, 50k env steps with a 5k random warm-up, 20 evaluation episodes every 2500 env steps, 5 envs, at one
# update per vector step (UTD 0.2, the paper's protocol) and five (UTD 1), seeds 1-3; every other setting at each
# script's defaults. Resumable: run it again and finished runs are skipped, interrupted ones resume from their
# checkpoint (every 5000 env steps, with the buffer). Then: python benchmarks/utd_report.py OUT
#
#   bash benchmarks/utd_study.sh [OUT] [--jobs N] [--env-ids ENV...]     (default OUT: sweep_utd, one job per core)
#   UTD_GRADIENT_STEPS=5 bash benchmarks/utd_study.sh OUT                 (UTD 1 only; default "1 5": both)
#   UTD_SCRIPTS="dpmd sdac" UTD_SEEDS="2 3" bash benchmarks/utd_study.sh OUT   (only these; default all, seeds 1-3)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-sweep_utd}; shift || true
common=(--num-envs 5 --learning-starts 5000 --total-timesteps 50000 --eval-interval 2500 --eval-episodes 20
        --checkpoint-buffer)
declare -A settings=([sac]="" [dpmd]="--num-candidates 4 --diffusion-steps 10"
                     [sdac]="--num-candidates 4 --num-reverse-samples 64 --diffusion-steps 10")
scripts=(); args_for=()
for name in ${UTD_SCRIPTS:-sac dpmd sdac}; do
  [[ -v settings[$name] ]] || { echo "error: UTD_SCRIPTS: $name is not one of sac dpmd sdac" >&2; exit 2; }
  scripts+=("${name}_continuous_action.py")
  [ -z "${settings[$name]}" ] || args_for+=(--args-for "${name}_continuous_action.py" "${settings[$name]}")
done
status=0
for gs in ${UTD_GRADIENT_STEPS:-1 5}; do  # gradient steps per vector step of 5 envs: UTD 0.2 and 1
  bash "$here/benchmark.sh" --scripts "${scripts[@]}" --env-ids Hopper-v4 --seeds ${UTD_SEEDS:-1 2 3} \
    --out "$out/gs$gs" --checkpoint-interval 5000 "$@" "${args_for[@]}" \
    -- "${common[@]}" --gradient-steps "$gs" || status=1
done
exit $status
