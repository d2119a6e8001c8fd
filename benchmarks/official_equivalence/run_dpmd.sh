#!/usr/bin/env bash
# Our DPMD against the authors' JAX DPMD, piece by piece, over three whole updates on one small batch: their code runs
# unmodified (observed through wrapped network, diffusion and optimiser calls; venv from ../shared/tools/official-sdac.sh
# setup), then ours runs with their parameters and their exact random draws injected, and prints max |difference|
# per piece (a', critic target and losses, the critics after each of their two Adam steps, the weights' min Q, the
# weights with their clip, the weighted DSM loss and gradient, policy, EMA, targets, lambda, running Q statistics).
#
#   bash benchmarks/official_equivalence/run_dpmd.sh            # float32, then float64
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export OFF_SRC=${OFF_SRC:-/tmp/official-sdac/src} JAX_PLATFORMS=cpu
OFF_VENV=${OFF_VENV:-/tmp/official-sdac/venv}
PY=${PY:-python}
export EQUIV_OUT=$(mktemp -d)
trap 'rm -rf "$EQUIV_OUT"' EXIT
for prec in "" --x64; do
  "$OFF_VENV/bin/python" "$here/dpmd_jax_side.py" $prec | grep -E "^step"
  "$PY" "$here/dpmd_torch_side.py" $prec
done
