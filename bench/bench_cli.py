"""Cold start of the `vram` command beside `python -c pass` (the interpreter alone), in interleaved runs of
fresh processes, because these machines are shared and noisy.

    python -m bench.bench_cli [--runs 9] [--against REV]

Each round runs every command once, in turn; medians and bests over the rounds. Target: `vram estimate` on a
catalog model under 0.3 s cold. `--against REV`: the same `vram estimate` from a checkout of REV (a temporary git
worktree, first on PYTHONPATH) in the same rounds, and the per-round difference: a change's effect measured beside
its own baseline, whatever the machine's speed that minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import results_file

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import app.estimator": [sys.executable, "-c", "import app.estimator"],
    "vram estimate glm-4v-9b --quantization q4_k_m --context 8192 --json":
        [sys.executable, "-m", "app.cli", "estimate", "glm-4v-9b", "--quantization", "q4_k_m", "--context", "8192",
         "--json"],
    "vram estimate llama-3.1-8b --runtime vllm (table)":
        [sys.executable, "-m", "app.cli", "estimate", "llama-3.1-8b", "--runtime", "vllm", "--gpu", "rtx-4090"],
}
TARGET_S = 0.3
GLM = "vram estimate glm-4v-9b --quantization q4_k_m --context 8192 --json"


SOURCE_ONLY = "vram estimate glm-4v-9b ... --json, no bytecode (every module compiled)"


AGAINST = "vram estimate glm-4v-9b ... --json, from the --against checkout"


def _once(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    cwd = env.get("PYTHONPATH", ROOT)  # a checkout to compare against runs from its own tree
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def run(runs: int = 9, against: Path | None = None) -> dict[str, dict[str, float]]:
    """Fresh processes with the bytecode an install leaves (pip compiles it; here written once by the warm-up
    runs into a private PYTHONPYCACHEPREFIX, nothing in the tree), and the glm command once more with none
    (PYTHONDONTWRITEBYTECODE=1 and an empty prefix: every module compiled from source)."""
    with tempfile.TemporaryDirectory() as cached, tempfile.TemporaryDirectory() as empty:
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        installed = {**base, "VRAM_OFFLINE": "1", "PYTHONPYCACHEPREFIX": cached}
        source = {**installed, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        runs_of = {**{k: (argv, installed) for k, argv in COMMANDS.items()},
                   SOURCE_ONLY: (COMMANDS[GLM], source)}
        if against is not None:  # its own bytecode prefix: the two trees' modules share names
            runs_of[AGAINST] = (COMMANDS[GLM], {**installed, "PYTHONPATH": str(against),
                                                "PYTHONPYCACHEPREFIX": str(Path(cached) / "against")})
        times: dict[str, list[float]] = {k: [] for k in runs_of}
        for argv, env in runs_of.values():  # warm the OS file cache and write the bytecode once
            _once(argv, env)
        for _ in range(runs):
            for name, (argv, env) in runs_of.items():
                times[name].append(_once(argv, env))
    out = {k: {"median_s": statistics.median(v), "best_s": min(v)} for k, v in times.items()}
    if against is not None:
        out[AGAINST]["median_difference_s"] = statistics.median(
            new - old for new, old in zip(times[GLM], times[AGAINST], strict=True))
    return out


@contextmanager
def _checkout(rev: str) -> Iterator[Path]:
    """A temporary git worktree of `rev` (detached), removed afterwards."""
    with tempfile.TemporaryDirectory() as parent:
        path = Path(parent) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT, check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def main(runs: int = 9, out: Path | None = None, against: str | None = None) -> dict:
    before = results_file.load_average()
    print(f"load average before: {before}")
    if against is None:
        r = run(runs)
    else:
        with _checkout(against) as tree:
            r = run(runs, tree)
    base = r["python -c pass"]
    for name, x in r.items():
        extra = "" if name == "python -c pass" else (
            f" ({x['median_s'] - base['median_s']:+.3f} s over the interpreter)")
        print(f"{name}: median {x['median_s']:.3f} s (best {x['best_s']:.3f} s){extra}")
    if against is not None:
        print(f"this checkout minus {against}, per round (median): {r[AGAINST]['median_difference_s']:+.3f} s")
    vram = r[GLM]
    print(f"vram estimate: median {vram['median_s']:.3f} s; target < {TARGET_S} s: "
          f"{'met' if vram['median_s'] < TARGET_S else 'MISSED'}; baseline python -c pass {base['median_s']:.3f} s")
    print(f"load average after: {results_file.load_average()}")
    results_file.write("cli", {"target_s": TARGET_S, "runs": runs, "against": against, "commands": r}, out, before)
    return r


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--out", type=Path, default=None, help="folder for the results file (default bench/results)")
    p.add_argument("--against", default=None, metavar="REV", help="also run the command from a checkout of REV")
    a = p.parse_args()
    main(a.runs, a.out, a.against)
