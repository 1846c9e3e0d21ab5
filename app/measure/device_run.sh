#!/usr/bin/env bash
# The prepared GPU run: the whole plan (app/measure/__main__.py PLAN) in one call, sized for about
# 8 minutes on one H200. Results and the raw log land in model_specs/measurements/ and, where the
# device tool sets $OUT, are copied there too.
#
# The device image has torch, transformers and nvidia-ml-py but not pydantic or gguf: carry them as
# wheels in .whl/ (see .library/device/README.md), e.g.
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     pydantic pydantic-core annotated-types typing-inspection typing-extensions gguf
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
out=$(python3 -m app.measure --plan --out-dir model_specs/measurements | tee /dev/stderr | tail -n 1)
if [ -n "${OUT:-}" ]; then
  cp "$out" "${out%.json}.log" "$OUT"/
fi
