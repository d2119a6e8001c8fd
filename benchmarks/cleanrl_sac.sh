#!/usr/bin/env bash
# CleanRL's own SAC (vwxyzjn/cleanrl, cleanrl/sac_continuous_action.py), unchanged and as its users run it, for the
# side-by-side with our sac_continuous_action.py: its own venv with CleanRL's pins (gymnasium 0.29.1, mujoco 2.3.3,
# numpy < 2) and the same torch as ours.
#
#   bash benchmarks/cleanrl_sac.sh setup GITDIR        # GITDIR: the bare git directory that the search tool's fetch
#                                                       # of github:vwxyzjn/cleanrl gives
#   bash benchmarks/cleanrl_sac.sh run [its flags]      # e.g. --env-id Hopper-v4 --seed 1 --total-timesteps 50000;
#                                                       # TensorBoard logs under $CLEANRL_SRC/runs/
set -euo pipefail
CLEANRL_SRC=${CLEANRL_SRC:-/tmp/cleanrl/src}
CLEANRL_VENV=${CLEANRL_VENV:-/tmp/cleanrl/venv}
cmd=${1:-}; shift || true
case "$cmd" in
  setup)
    gitdir=${1:?usage: cleanrl_sac.sh setup GITDIR}
    mkdir -p "$CLEANRL_SRC"
    git --git-dir="$gitdir" archive HEAD cleanrl/sac_continuous_action.py cleanrl_utils | tar -x -C "$CLEANRL_SRC"
    git --git-dir="$gitdir" rev-parse --short HEAD > "$CLEANRL_SRC/COMMIT"
    python3 -m venv "$CLEANRL_VENV"
    "$CLEANRL_VENV/bin/pip" install -q "torch==2.13.0" "gymnasium[mujoco]==0.29.1" "mujoco==2.3.3" "numpy<2" \
      "tyro==1.0.17" "tensorboard==2.21.0"
    echo "CleanRL SAC ready: $CLEANRL_SRC (commit $(cat "$CLEANRL_SRC/COMMIT")) with $CLEANRL_VENV" ;;
  run)
    cd "$CLEANRL_SRC"
    PYTHONPATH=. "$CLEANRL_VENV/bin/python" cleanrl/sac_continuous_action.py "$@" ;;
  *) sed -n 2,9p "$0"; exit 2 ;;
esac
