#!/usr/bin/env bash
# The CPU benchmarks of README.md "Results": SDAC with CPU settings on InvertedPendulum-v4 (30k env steps) and
# Hopper-v4 (100k env steps), seeds 1 and 2, all four runs at once with one torch thread each (2-core machine),
# then a table of evaluation returns. Measured: 112 minutes for each Hopper run on 2 shared cores. Logs: runs/ and benchmarks/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
CPU="--num-candidates 4 --num-reverse-samples 16 --diffusion-steps 10 --learning-starts 5000 --eval-episodes 10 --buffer-size 100000"
mkdir -p benchmarks/logs
pids=()
for seed in 1 2; do
  OMP_NUM_THREADS=1 python sdac_continuous_action.py --env-id InvertedPendulum-v4 --seed $seed --exp-name cpu \
    --total-timesteps 30000 --eval-interval 2500 $CPU > benchmarks/logs/InvertedPendulum-v4_$seed.log 2>&1 & pids+=($!)
  OMP_NUM_THREADS=1 python sdac_continuous_action.py --env-id Hopper-v4 --seed $seed --exp-name cpu \
    --total-timesteps 100000 --eval-interval 5000 $CPU > benchmarks/logs/Hopper-v4_$seed.log 2>&1 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
python benchmarks/report.py runs --exp-name cpu --solved InvertedPendulum-v4=950 --out benchmarks/logs/report --title "SDAC, CPU settings"
