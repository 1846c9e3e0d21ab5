"""Mutation fuzz of the GGUF upload and of log import: every mutant is answered (a 200 or a 422 naming the field;
a log report with warnings), none raises, none takes long. Seeded, sized to well under a minute together.

The GGUF seeds are headers written byte by byte (tests/hostile.py) with the arrays a real file has (a token
list, scores); the log seeds are the committed public logs in tests/fixtures/logs.
"""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.estimator import InvalidRequest, VramRequest
from app.estimator.gguf.estimate import estimate_gguf
from app.logs import check_log
from tests.hostile import ARRAY, STRING, gguf, kv, llama, small_model, tensor

LOGS = Path(__file__).parent / "fixtures" / "logs"


def _seeds() -> list[bytes]:
    tokens = struct.pack("<IQ", STRING, 50) + b"".join(struct.pack("<Q", 3) + b"tok" for _ in range(50))
    scores = struct.pack("<IQ", 6, 50) + struct.pack("<50f", *range(50))
    heads = struct.pack("<IQ", 4, 2) + struct.pack("<2I", 4, 4)
    with_arrays = gguf(llama() + [kv("tokenizer.ggml.tokens", ARRAY, tokens),
                                  kv("tokenizer.ggml.scores", ARRAY, scores),
                                  kv("llama.attention.head_count_kv", ARRAY, heads)],
                       [tensor("token_embd.weight", (64, 50)), tensor("blk.0.attn_q.weight", (64, 64), 0, 12800)])
    return [small_model(), small_model("gemma2", attention__sliding_window=64), with_arrays]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    op = rng.randrange(6)
    if op == 0:  # flip a few bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 1:  # a count or length made huge (8 aligned bytes of 0xFF or a high bit)
        i = rng.randrange(len(b) - 8)
        b[i:i + 8] = rng.choice([b"\xff" * 8, struct.pack("<Q", 1 << rng.randint(20, 63))])
    elif op == 2:  # truncated
        del b[rng.randrange(4, len(b)):]
    elif op == 3:  # a span repeated
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 64))
        b[i:i] = b[i:j] * rng.randint(1, 50)
    elif op == 4:  # random bytes inserted
        i = rng.randrange(len(b))
        b[i:i] = rng.randbytes(rng.randint(1, 32))
    else:  # a uint32 value set to an edge
        i = rng.randrange(len(b) - 4)
        b[i:i + 4] = struct.pack("<I", rng.choice([0, 1, 0xFFFFFFFF, 1 << 31, 3]))
    return bytes(b)


def test_gguf_mutation_fuzz_is_answered_fast():
    rng = random.Random(20261207)
    seeds = _seeds()
    slow: list[tuple[float, int]] = []
    outcomes = {"ok": 0, "422": 0}
    # CPU time of this thread, not wall time: the bound is on the work done, whatever else the machine runs
    started = time.thread_time()
    for case in range(1500):
        data = _mutate(rng.choice(seeds), rng)
        t = time.thread_time()
        try:
            estimate_gguf([("fuzz.gguf", data)], VramRequest(model="x"))
            outcomes["ok"] += 1
        except InvalidRequest as exc:
            assert exc.field == "file" or exc.field, exc
            outcomes["422"] += 1
        dt = time.thread_time() - t
        if dt > 2:  # the attacker's fuzz found 55 cases over 2 s
            slow.append((dt, case))
    assert not slow, slow
    assert outcomes["ok"] > 50 and outcomes["422"] > 500, outcomes  # the fuzz reaches both ends
    assert time.thread_time() - started < 40


def test_gguf_mutants_over_http_are_200_or_422(client: TestClient):
    rng = random.Random(7)
    seeds = _seeds()
    for _ in range(60):
        data = _mutate(rng.choice(seeds), rng)
        r = client.post("/api/gguf", files={"file": ("fuzz.gguf", data)}, data={"context": "64"})
        assert r.status_code in (200, 422), (r.status_code, r.text[:300])


def _log_mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 20)):
        i = rng.randrange(len(lines))
        line = lines[i]
        op = rng.randrange(6)
        if op == 0 and any(c.isdigit() for c in line):  # a number made absurd
            j = next(k for k, c in enumerate(line) if c.isdigit())
            line = line[:j] + rng.choice(["abc", "9" * 5000, "-1", "1.2.3", "0", "1e999", "nan"]) + line[j + 1:]
        elif op == 1:  # a span repeated
            j = rng.randrange(len(line) + 1)
            line = line[:j] + line[j:j + rng.randint(1, 30)] * rng.randint(1, 400) + line[j:]
        elif op == 2:  # cut
            line = line[:rng.randrange(len(line) + 1)]
        elif op == 3:  # two lines glued
            line = line + lines[rng.randrange(len(lines))]
        elif op == 4:  # odd characters
            line = line + "".join(rng.choice("()[]{}|=:,.'\"@~/\\- \t") for _ in range(rng.randint(1, 2000)))
        else:  # a line duplicated elsewhere
            lines.insert(rng.randrange(len(lines) + 1), line)
        lines[i] = line
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(p.name for p in LOGS.glob("*.log"))[::6])
def test_log_mutation_fuzz_never_raises(catalog, name: str):
    rng = random.Random(name)
    text = (LOGS / name).read_text()[:200_000]
    for _ in range(6):
        mutant = _log_mutate(text, rng)
        t = time.perf_counter()
        report = check_log(mutant, catalog)
        assert report.log is not None
        assert time.perf_counter() - t < 5
