#!/usr/bin/env bash
# Runs every benchmark once and keeps the raw output with the machine and versions it came from:
#   bash bench/run.sh   ->  bench/results/<UTC date>.txt
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# $(date -u +%FT%TZ) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# git $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(python3 --version)"
  python3 -c "from bench.results_file import interpreter; print('# interpreter', interpreter())"
  python3 -c "import fastapi, uvicorn, pydantic, starlette, jinja2, httpx; print('#', *(f'{m.__name__} {m.__version__}' for m in (fastapi, uvicorn, pydantic, starlette, jinja2, httpx)))"
  echo "\$ python3 -m bench.bench_estimator"; python3 -m bench.bench_estimator
  echo "\$ python3 -m bench.bench_api"; python3 -m bench.bench_api
  echo "\$ python3 -m bench.bench_pages"; python3 -m bench.bench_pages
  echo "\$ python3 -m bench.bench_import"; python3 -m bench.bench_import  # catalog (issue 8)
  echo "\$ python3 -m bench.bench_cli"; python3 -m bench.bench_cli
  echo "\$ python3 -m bench.bench_load"; python3 -m bench.bench_load
  echo "\$ python3 -m bench.bench_load --new"; python3 -m bench.bench_load --new
  echo "\$ python3 -m bench.bench_gc"; python3 -m bench.bench_gc
} 2>&1 | tee "$out"
echo "saved $out"
