"""Read SPLIT_FIT (app/estimator/runtimes/llamacpp_compute.py) off the Vulkan grid: per architecture, the smallest
quarter-row counts that leave no full-offload row's device compute buffer under llama.cpp's printed one.

    python scripts/fit_split_compute.py        # prints the table to paste; a FIT, labelled as one where it is used
"""

from __future__ import annotations

import dataclasses

from app.estimator.llamacpp_check import check_gpu_row, load_grid
from app.estimator.runtimes import llamacpp_compute as lc
from app.measure.llamacpp_grid import OUT, specs


def category(row: dict) -> str:
    p = row["params"]
    if row["params"]["n_ubatch"] * specs()[row["model"]].language_model.vocab * 4 >= lc.VK_MAX_CHUNK:
        return "second_chunk"
    if p["flash_attn"] == "off" and p.get("n_parallel", 1) == 1:
        return "attention"
    return "output_streams" if p.get("n_parallel", 1) > 1 else "output"


def main() -> None:
    grid, catalog = load_grid(OUT / "grid-vulkan.json"), specs()
    rows = [r for r in grid["rows"] if r["rc"] == 0 and r["params"]["n_gpu_layers"] > r["n_layer"]]
    for arch in dict.fromkeys(r["arch"] for r in rows):
        lc.SPLIT_FIT.pop(arch, None)
        mine = [r for r in rows if r["arch"] == arch]
        for _ in range(200):
            under = [r for r in mine if check_gpu_row(catalog[r["model"]], r).under("gpu")]
            if not under:
                break
            fit, r = lc.SPLIT_FIT.get(arch, lc.SplitFit()), under[0]
            before = check_gpu_row(catalog[r["model"]], r).ours[("compute", "gpu")]
            field = category(r)
            lc.SPLIT_FIT[arch] = dataclasses.replace(fit, **{field: getattr(fit, field) + 0.25})
            if field == "attention" and check_gpu_row(catalog[r["model"]], r).ours[("compute", "gpu")] == before:
                field = "output"  # the attention moment is not the peak here: the output is
                lc.SPLIT_FIT[arch] = dataclasses.replace(fit, **{field: getattr(fit, field) + 0.25})
        print(f'    "{arch}": {lc.SPLIT_FIT.get(arch, lc.SplitFit())},')


if __name__ == "__main__":
    main()
