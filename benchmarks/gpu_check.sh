#!/usr/bin/env bash
# The first GPU session's check, in one device call of under 8 minutes, everything written under $OUT (at most 8
# files come back): the carried wheels installed; tests/test_cuda.py; a 2k-env-step eager SDAC run on Ant-v4 with a
# checkpoint, --save-model and --eval-only; benchmarks/speed.py on Ant-v4 for SDAC, DPMD and SAC at the official
# settings in eager, --compile and --cudagraphs (with and without --tf32): ms per training iteration, the time 1M env
# steps would take, env steps per second, peak GPU memory, graphs and graph breaks; torch.compile's recompile and
# graph-break log.
#
#   here, once:  bash ../shared/tools/device-wheels.sh moviepy==2.2.1 imageio-ffmpeg==0.5.1 decorator proglog \
#                    python-dotenv importlib-resources     # .whl/, 38 MB (imageio-ffmpeg 0.8.1's wheel alone is 68 MB,
#                                                           # over the 64 MiB a device call carries)
#   device run:  command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 540
#   on a CPU:    bash benchmarks/gpu_check.sh              # no-GPU mode: small settings, the CUDA parts skipped
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=python3  # the GPU machine's (it holds torch); here, the project's venv where python3 lacks the requirements
if ! $PY -c "import gymnasium, mujoco, tyro" 2>/dev/null; then
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import gymnasium, mujoco, tyro" 2>/dev/null; then PY=$PWD/.venv/bin/python
  else
    [ -d .whl ] || { echo "error: gymnasium, mujoco or tyro missing and no .whl/ carried (see the header)" >&2; exit 2; }
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || exit 2
    export PYTHONPATH=/tmp/site
  fi
fi
gpu=$($PY -c "import torch; print(int(torch.cuda.is_available()))")
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"
log "gpu_check at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), GPU: $gpu"
{ nvidia-smi 2>&1 | head -15; $PY -c "import sys, torch, gymnasium, mujoco, tyro, numpy
print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')
print('gymnasium', gymnasium.__version__, 'mujoco', mujoco.__version__, 'tyro', tyro.__version__, 'numpy', numpy.__version__)"; } > "$OUT/env.txt" 2>&1
if [ "$gpu" = 1 ]; then
  export MUJOCO_GL=egl
  workers=$($PY -c "import xdist" 2>/dev/null && echo "-n 6" || echo "")
  # per setting: the modes in the order they matter (the fastest first), and the seconds it may take
  speed=("sdac official|eager cudagraphs cudagraphs+tf32 compile eager+tf32|110" "dpmd official|eager cudagraphs cudagraphs+tf32|50"
         "sac|eager cudagraphs compile|50")
  run_flags=(); speed_iters=100; t_tests=170; t_run=90
else
  workers=""; speed=("sdac cpu|eager compile|200" "dpmd study|eager compile|120" "sac|eager compile|120")
  run_flags=(--num-candidates 4 --num-reverse-samples 16 --diffusion-steps 5); speed_iters=10; t_tests=60; t_run=300
fi

# 1. the CUDA tests (each a few iterations of every script and mode on the GPU; skipped without one)
log "1. tests/test_cuda.py"
timeout "$t_tests" $PY -m pytest -q -p no:cacheprovider $workers tests/test_cuda.py -rs > "$OUT/test_cuda.txt" 2>&1
log "   exit $? ($(tail -1 "$OUT/test_cuda.txt"))"

# 2. a short real run on Ant-v4: training, a checkpoint, the saved model, then --eval-only on it
log "2. SDAC, Ant-v4, 2k env steps, eager"
tmp=$(mktemp -d)
(cd "$tmp" && timeout "$t_run" $PY "$OLDPWD/sdac_continuous_action.py" --env-id Ant-v4 --total-timesteps 2000 \
   --learning-starts 1000 --eval-interval 1000 --eval-episodes 5 --checkpoint-interval 1000 --save-model \
   --progress-seconds 10 "${run_flags[@]}" \
 && timeout 60 $PY "$OLDPWD/sdac_continuous_action.py" --eval-only --load-model runs/*/sdac_continuous_action.sdac_model \
   --eval-episodes 5) > "$OUT/ant_run.txt" 2>&1
log "   exit $? ($(grep -c eval_return "$OUT/ant_run.txt") evaluations; $(grep 'time per training' "$OUT/ant_run.txt"))"
rm -rf "$tmp"

# 3. speed on Ant-v4, one setting at a time (each row printed as measured), torch.compile's recompiles and graph
# breaks logged to their own file
log "3. benchmarks/speed.py --env-id Ant-v4"
: > "$OUT/speed.md"; : > "$OUT/compile_log.txt"
for entry in "${speed[@]}"; do
  IFS="|" read -r setting modes seconds <<< "$entry"
  TORCH_LOGS=recompiles,graph_breaks timeout "$seconds" $PY benchmarks/speed.py --env-id Ant-v4 \
    --iterations "$speed_iters" --settings "$setting" --modes $modes >> "$OUT/speed.md" 2>> "$OUT/compile_log.txt"
  log "   $setting: exit $? ($(grep -c "^| $setting |" "$OUT/speed.md") of $(wc -w <<< "$modes") modes measured)"
done
log "   $(grep -c -i recompil "$OUT/compile_log.txt") recompile lines, $(grep -c -i 'graph break' "$OUT/compile_log.txt") graph-break lines"
log "done"
