#!/usr/bin/env bash
# Our DACER against the authors' JAX DACER (the SDAC authors' code, relax/algorithm/dacer.py at a50cf41), piece by piece,
# over three whole updates on one small batch: their code runs unmodified (observed through wrapped network, optimiser
# and k-means calls; venv from ../shared/tools/official-sdac.sh setup), then ours runs with their parameters and their
# exact random draws injected, and prints max |difference| per piece (the schedule and configuration, a' through the
# chain, the distributional critics' means and stds, sigma_bar, the DSAC-T losses and gradients, the policy's action
# and its gradient through the chain, the 200 actions per state and the mixture's entropy bound, the parameters after
# Adam, the targets, log alpha).
#
#   bash benchmarks/official_equivalence/run_dacer.sh            # float32, then float64
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export OFF_SRC=${OFF_SRC:-/tmp/official-sdac/src} JAX_PLATFORMS=cpu
OFF_VENV=${OFF_VENV:-/tmp/official-sdac/venv}
PY=${PY:-python}
export EQUIV_OUT=$(mktemp -d)
trap 'rm -rf "$EQUIV_OUT"' EXIT
for prec in "" --x64; do
  "$OFF_VENV/bin/python" "$here/dacer_jax_side.py" $prec | grep -E "^step"
  "$PY" "$here/dacer_torch_side.py" $prec
done
