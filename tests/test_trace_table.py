"""The transformers runtime held to the committed traces of transformers' real classes (model_specs/traces/):
weights + KV cache + activations within 3% of every traced allocated peak; KV and weights exact."""

from __future__ import annotations

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator.traces import compare_trace, load_traces

TRACES = load_traces(SPECS_DIR / "traces")
ROWS = [row for f in TRACES for row in f.rows]
TOLERANCE = 0.03
MiB = 1 << 20


def test_a_table_is_committed_with_its_environment():
    assert ROWS, "no traced rows under model_specs/traces/; run python -m app.measure trace --all"
    for f in TRACES:
        assert f.environment.torch and f.environment.transformers and f.environment.command.startswith(
            "python -m app.measure trace --all")
        assert all(row.model == f.model for row in f.rows)


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_estimate_within_3_percent_of_the_traced_peak(catalog: Catalog, row):
    c = compare_trace(catalog.model(row.model), row)
    assert c.estimated_kv == row.kv_cache_bytes  # the DynamicCache's storages, byte for byte
    # parameters + buffers (rotary inv_freq: a few KiB) against the stored weights
    assert abs(c.estimated_weights - row.parameters_bytes) < MiB
    assert abs(c.error) <= TOLERANCE, (f"{row.label}: estimated {c.estimated_peak:,} vs traced {row.peak_bytes:,} "
                                       f"({c.error:+.2%}; temporaries {c.temporaries_error:+.1%})")


def test_share_of_rows_estimated_low_is_reported(catalog: Catalog):
    """Erring low is the worst error: print the share of rows under the traced peak (and the worst)."""
    errors = [compare_trace(catalog.model(r.model), r).error for r in ROWS]
    low = [e for e in errors if e < 0]
    print(f"\n{len(ROWS)} traced rows; under-estimated {len(low)}/{len(ROWS)}; worst {min(errors):+.2%}, "
          f"max {max(errors):+.2%}")
    assert len(errors) == len(ROWS)


def test_eager_rows_grow_with_the_square_of_the_length(catalog: Catalog):
    eager = sorted((r for r in ROWS if r.attn_implementation == "eager" and r.batch == 1), key=lambda r: r.context)
    if len(eager) < 2:
        pytest.skip("no eager-attention model traced at two lengths")
    a, b = eager[0], eager[-1]
    ratio = b.temporaries_bytes / a.temporaries_bytes
    assert ratio > 1.5 * b.context / a.context  # clearly faster than linear, as the estimate says
