#!/usr/bin/env bash
# One device call that ends by itself within BUDGET seconds of wall time and brings back, in at most 8 flat files
# under $OUT, every number it reaches, the most valuable first:
#   0 smoke       env.txt       imports, gym.make("Ant-v4") and a step, one CUDA op; on failure, the reason, exit 3
#   1 probe       probe.txt     launch and graph-node cost, the chain's matmuls in fp32/TF32/bf16, the sampler eager
#                               and as one CUDA graph, random numbers across replays, git / MPS / GL loaders
#   2 speed_sdac  speed.md      SDAC at the official settings on Ant-v4, today's iteration and the one before issue
#                               38 side by side: eager, cudagraphs + TF32
#   3 test_cuda   test_cuda.txt tests/test_cuda.py, verbose, with its summary and durations
#   4 speed_more  speed.md      SAC, DPMD and DACER (official settings): eager, cudagraphs
#   5 ant_run     ant_run.txt   SDAC on Ant-v4, eager: a checkpoint with the buffer, --resume, --save-model,
#                               --eval-only
# plus speed_log.txt (speed.py's stderr: torch.compile's recompiles, graph breaks and perf hints, any failure) and
# summary.txt (this script's log: each stage's cap, exit status and time; the files that will come back).
# Each stage gets the smaller of its cap and the time left, and is then stopped with SIGINT (pytest prints its
# summary, speed.py keeps the rows it printed, a run writes its checkpoint) and killed KILL_AFTER seconds later.
# Nothing renders: MUJOCO_GL is unset (MuJoCo's EGL needs libEGL.so.1, which the GPU image is not known to have).
#
#   here, once:  bash ../shared/tools/device-wheels.sh    # .whl/: gymnasium, mujoco, tyro and their needs, ~11 MB
#   device:      command "COMMIT=<commit> bash benchmarks/gpu_run.sh", carry [".whl"], timeout_s 540; then give_back
#   on a CPU:    bash benchmarks/gpu_run.sh                # no-GPU mode: CPU settings and modes, CUDA parts skipped
# Settings (environment): BUDGET (480), OUT (/tmp/gpu_run), KILL_AFTER (15), STAGES (only these, by name),
# CAPS ("name=seconds ..." to change caps), HANG (a stage replaced by one that ignores SIGINT: the rehearsal's).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
BUDGET=${BUDGET:-480} KILL_AFTER=${KILL_AFTER:-15} RESERVE=5 MIN_STAGE=${MIN_STAGE:-20}
OUT=${OUT:-/tmp/gpu_run}
mkdir -p "$OUT"
: > "$OUT/summary.txt"
unset MUJOCO_GL PYOPENGL_PLATFORM
export PYTHONUNBUFFERED=1
log() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - T0))s] $*" | tee -a "$OUT/summary.txt"; }
failures=0

# Python: the GPU machine's python3 holds torch and gets the carried wheels; here, the project's venv if python3
# lacks the requirements.
PY=python3
if ! $PY -c "import gymnasium, mujoco, tyro" 2>/dev/null; then
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import gymnasium, mujoco, tyro" 2>/dev/null; then
    PY=$PWD/.venv/bin/python
  elif [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      >> "$OUT/env.txt" 2>&1 || { log "smoke FAILED: the carried wheels did not install (env.txt)"; exit 3; }
    export PYTHONPATH=/tmp/site
  else
    log "smoke FAILED: gymnasium, mujoco or tyro missing and no .whl/ carried (see this script's header)"; exit 3
  fi
fi
export OUT PY  # (the stages' inner shells read them)
gpu=$($PY -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${COMMIT:-?}")
export COMMIT=$commit
log "gpu_run at commit $commit, budget ${BUDGET}s, GPU: $gpu, python: $PY"

# stage NAME CAP FILE CMD...: runs CMD with stdout and stderr appended to $OUT/FILE, within min(CAP, time left)
stage() {
  local name=$1 cap=$2 file=$3 left rc start
  shift 3
  if [ -n "${STAGES:-}" ] && [[ " $STAGES " != *" $name "* ]]; then return 0; fi
  for c in ${CAPS:-}; do [ "${c%%=*}" = "$name" ] && cap=${c#*=}; done
  left=$((BUDGET - (SECONDS - T0) - RESERVE - KILL_AFTER))
  ((cap > left)) && cap=$left
  if ((cap < MIN_STAGE)); then log "skip $name: ${left}s left"; failures=$((failures + 1)); return 0; fi
  [ "${HANG:-}" = "$name" ] && set -- bash -c 'trap "" INT; exec sleep 100000'  # ignores SIGINT: killed at the end
  log "$name (cap ${cap}s) > $file"
  start=$SECONDS
  timeout -s INT -k "$KILL_AFTER" "$cap" "$@" >> "$OUT/$file" 2>&1
  rc=$?
  case $rc in
    0) log "   $name: done in $((SECONDS - start))s" ;;
    124) log "   $name: cap reached, stopped by SIGINT after $((SECONDS - start))s" ;;
    137) log "   $name: cap reached, killed $KILL_AFTER s after SIGINT ($((SECONDS - start))s)" ;;
    *) log "   $name: exit $rc after $((SECONDS - start))s" ;;
  esac
  ((rc == 0)) || failures=$((failures + 1))
}

if [ "$gpu" = 1 ]; then
  sdac_speed=(--settings "sdac official" "sdac official, older iteration" --launches --modes eager cudagraphs+tf32)
  iterations=300
  more_speed=(--settings sac "dpmd official" "dacer official" --launches --modes eager cudagraphs)
  run_flags=()
  cuda_op="x = torch.ones(2, device='cuda') * 2; print('one CUDA op:', float(x.sum()), torch.cuda.get_device_name())"
  workers=$($PY -c "import xdist" 2>/dev/null && echo "-n 8" || echo "")
else
  sdac_speed=(--settings "sdac cpu" --launches --modes eager compile) iterations=10
  more_speed=(--settings sac "dpmd study" "dacer study" --launches --modes eager compile)
  run_flags=(--num-candidates 4 --num-reverse-samples 16 --diffusion-steps 5) cuda_op="print('no CUDA: no CUDA op')"
  workers=""  # (every test skips)
fi

# 0. the smoke: a wrong environment fails here within a minute, with its reason, leaving time to rerun
stage smoke 60 env.txt bash -c "{ nvidia-smi 2>&1 | head -20; $PY - <<EOF
import sys, torch, numpy, gymnasium as gym, mujoco, tyro
print(sys.version)
print('torch', torch.__version__, 'cuda', torch.version.cuda, '| numpy', numpy.__version__,
      '| gymnasium', gym.__version__, '| mujoco', mujoco.__version__, '| tyro', tyro.__version__)
import sdac_continuous_action, dpmd_continuous_action, dacer_continuous_action, sac_continuous_action
env = gym.make('Ant-v4')
env.reset(seed=0)
env.step(env.action_space.sample())
print('gym.make(Ant-v4), reset, step: ok', env.observation_space.shape, env.action_space.shape)
$cuda_op
EOF
}"
if [ -z "${STAGES:-}" ] || [[ " $STAGES " == *" smoke "* ]]; then
  if ! grep -q "^gym.make(Ant-v4), reset, step: ok" "$OUT/env.txt" || ! grep -q "CUDA op" "$OUT/env.txt"; then
    log "smoke FAILED; the end of env.txt:"
    tail -8 "$OUT/env.txt" | tee -a "$OUT/summary.txt"
    exit 3
  fi
fi

# 1. the facts the speed model rests on
stage probe 60 probe.txt $PY benchmarks/gpu_probe.py

# 2. the headline: SDAC at the official settings; TF32 first of the graph modes (the paper's JAX uses it by default)
stage speed_sdac 240 speed.md env TORCH_LOGS=recompiles,graph_breaks,perf_hints bash -c \
  '"$0" benchmarks/speed.py --env-id Ant-v4 --iterations "$1" "${@:2}" 2>> "$OUT/speed_log.txt"' \
  "$PY" "$iterations" "${sdac_speed[@]}"

# 3. correctness on the GPU: every script and mode, evaluations under graphs, checkpoints across devices
stage test_cuda 150 test_cuda.txt env TORCHINDUCTOR_COMPILE_THREADS=2 \
  $PY -m pytest -p no:cacheprovider $workers -v -rA --durations=0 tests/test_cuda.py

# 4. the baseline and the sibling
stage speed_more 120 speed.md env TORCH_LOGS=recompiles,graph_breaks,perf_hints bash -c \
  '"$0" benchmarks/speed.py --env-id Ant-v4 --iterations "$1" "${@:2}" 2>> "$OUT/speed_log.txt"' \
  "$PY" "$iterations" "${more_speed[@]}"

# 5. a real run's plumbing: a checkpoint, --resume from it, --save-model, --eval-only of the saved model
tmp=$(mktemp -d)
stage ant_run 90 ant_run.txt bash -c 'cd "$1" && shift && set -e
  common=(--env-id Ant-v4 --learning-starts 500 --eval-interval 500 --eval-episodes 2 --progress-seconds 10 "$@")
  "$PY" "$OLDPWD/sdac_continuous_action.py" "${common[@]}" --total-timesteps 600 --checkpoint-interval 600 \
    --checkpoint-buffer
  "$PY" "$OLDPWD/sdac_continuous_action.py" --resume runs/*/checkpoint.pt --total-timesteps 1000 --save-model
  "$PY" "$OLDPWD/sdac_continuous_action.py" --eval-only --load-model runs/*/sdac_continuous_action.sdac_model \
    --eval-episodes 2' _ "$tmp" "${run_flags[@]}"
rm -rf "$tmp"

# what comes back: at most 8 files, flat, 16 MiB each, named in letters, digits, '.', '_' and '-'
for f in "$OUT"/*; do
  name=$(basename "$f")
  if [ -d "$f" ] || ! [[ $name =~ ^[A-Za-z0-9._-]+$ ]]; then
    log "will not come back: '$name'"
    failures=$((failures + 1))
  elif (($(stat -c %s "$f") > 16 * 1024 * 1024)); then
    tail -c $((15 * 1024 * 1024)) "$f" > "$OUT/cut.tmp" && mv "$OUT/cut.tmp" "$f"
    log "$name: over 16 MiB, cut to its last 15 MiB"
  fi
done
files=$(find "$OUT" -mindepth 1 -maxdepth 1 | wc -l)
((files > 8)) && { log "$files files under \$OUT: over the 8 that come back"; failures=$((failures + 1)); }
rows=$(grep -c '^| ' "$OUT/speed.md" 2>/dev/null)
tests=$(grep -E '^=+ .*(passed|failed|skipped|error).* =+$' "$OUT/test_cuda.txt" 2>/dev/null | tail -1 | tr -d '=')
log "done: $files files ($(cd "$OUT" && ls | tr '\n' ' ')); ${rows:-0} table lines in speed.md;" \
  "test_cuda:${tests:- none}; $failures stage(s) failed, cut or skipped"
((failures == 0))
