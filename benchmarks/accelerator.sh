#!/usr/bin/env bash
# benchmarks/accelerator.py on a borrowed GPU machine that has JAX, PyTorch and timm but neither TensorFlow nor
# Keras, and no package registry: the few wheels our JAX step needs travel with the repository.
#   bash benchmarks/accelerator.sh fetch        # here: the wheels into benchmarks/wheels/ (about 8 MB, ignored by git)
#   bash benchmarks/accelerator.sh [FLAGS...]   # there (carry benchmarks/wheels): accelerator.py with FLAGS
# PYTHON_VERSION (default 3.12) is the other machine's Python. The wheels go into a scratch folder on its path,
# never into its environment.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=benchmarks/wheels
if [[ "${1:-}" == fetch ]]; then
  pip download -q --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" --platform manylinux2014_x86_64 \
      --platform manylinux_2_17_x86_64 --no-deps -d "$WHEELS" "keras==3.15.1" namex optree ml-collections h5py pyyaml
  du -sh "$WHEELS"
  exit 0
fi
if ! python -c "import keras, ml_collections, yaml" 2>/dev/null; then
  SCRATCH=$(mktemp -d)
  pip install -q --no-deps --no-index --target "$SCRATCH" "$WHEELS"/*.whl
  export PYTHONPATH="$SCRATCH${PYTHONPATH:+:$PYTHONPATH}"
fi
python benchmarks/accelerator.py "$@"
