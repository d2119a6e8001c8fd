#!/usr/bin/env bash
# Our SDAC against the authors' JAX code, piece by piece, on one small batch: their code runs unmodified (its venv
# from ../shared/tools/official-sdac.sh setup), then ours runs with their parameters and their exact random draws
# injected, and prints max |difference| per piece (schedule, networks, each reverse-diffusion step, best-of-N and
# noise, the RSSM weights, loss and gradient, the critic target, three whole updates with Adam, the EMA and lambda).
#
#   bash benchmarks/official_equivalence/run.sh            # float32, then float64
#   OFF_SRC=... OFF_VENV=... bash benchmarks/official_equivalence/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export OFF_SRC=${OFF_SRC:-/tmp/official-sdac/src} JAX_PLATFORMS=cpu
OFF_VENV=${OFF_VENV:-/tmp/official-sdac/venv}
PY=${PY:-python}
export EQUIV_OUT=$(mktemp -d)
trap 'rm -rf "$EQUIV_OUT"' EXIT
"$OFF_VENV/bin/python" "$here/acting_check_jax.py"
for prec in "" --x64; do
  "$OFF_VENV/bin/python" "$here/jax_side.py" $prec >/dev/null
  "$PY" "$here/torch_side.py" $prec
done
