"""Hostile inputs, written byte by byte per the GGUF spec (ggml/docs/gguf.md), shared by the hostile tests and
scripts/bench_event_loop.py. Not a test module (no `test_` prefix)."""

from __future__ import annotations

import struct
from typing import Any

UINT32, STRING, ARRAY, UINT64 = 4, 8, 9, 10  # GGUFValueType


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key: str, vtype: int, value: Any) -> bytes:
    """One key/value: scalars as uint32/uint64, strings, or raw bytes already laid out for an array."""
    head = _str(key) + struct.pack("<I", vtype)
    if vtype == UINT32:
        return head + struct.pack("<I", value)
    if vtype == UINT64:
        return head + struct.pack("<Q", value)
    if vtype == STRING:
        return head + _str(value)
    return head + value  # ARRAY: item type, count and items, as the caller wrote them


def tensor(name: str, dims: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<II", ggml_type, 0)[:4] + struct.pack("<Q", offset))


def gguf(kvs: list[bytes], tensors: list[bytes] = (), n_kv: int | None = None, n_tensors: int | None = None,
         pad_to: int = 0) -> bytes:
    """A GGUF v3 header; the counts may lie (n_kv, n_tensors); zero padding to `pad_to` bytes."""
    body = (b"GGUF" + struct.pack("<IQQ", 3, len(tensors) if n_tensors is None else n_tensors,
                                  len(kvs) if n_kv is None else n_kv) + b"".join(kvs) + b"".join(tensors))
    return body.ljust(pad_to, b"\0")


def llama(arch: str = "llama", **keys: int) -> list[bytes]:
    """general.architecture plus `{arch}.*` uint32 keys (dots written as __: attention__head_count)."""
    base = {"block_count": 2, "embedding_length": 64, "attention__head_count": 4, "context_length": 128}
    return [kv("general.architecture", STRING, arch)] + [
        kv(f"{arch}.{k.replace('__', '.')}", UINT32, v) for k, v in {**base, **keys}.items()]


def small_model(arch: str = "llama", **keys: int) -> bytes:
    """A valid 2-layer header: token_embd + output + per-layer attention/FFN tensors, F32."""
    names = ["token_embd.weight", "output.weight"] + [f"blk.{i}.{t}" for i in range(2) for t in
                                                       ("attn_q.weight", "attn_k.weight", "attn_v.weight",
                                                        "attn_output.weight", "ffn_gate.weight",
                                                        "ffn_up.weight", "ffn_down.weight")]
    tensors, offset = [], 0
    for n in names:
        dims = (64, 100) if n in ("token_embd.weight", "output.weight") else (64, 64)
        tensors.append(tensor(n, dims, 0, offset))
        offset += dims[0] * dims[1] * 4
    return gguf(llama(arch, **keys), tensors)


def array_bomb(count: int = 1 << 40, item_type: int = STRING) -> bytes:
    """288 bytes: a metadata array that claims `count` items (GGUFReader allocates for each)."""
    return gguf([kv("general.architecture", STRING, "llama"),
                 kv("tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", item_type, count))], pad_to=288)


def layer_bomb() -> bytes:
    """288 bytes: block_count 2^32-1 with a sliding window (gemma2): 4 billion steps in the per-layer loop."""
    return gguf(llama("gemma2", block_count=(1 << 32) - 1, attention__sliding_window=4096), pad_to=288)


ADVERSARIAL_FILLERS = ("a", " ", "a ", "1", "1.", "1 ", "a.", "a=", "=", "(", ")", "a@", "@a", ".", "-", "/a",
                       "\t", "a:", ": ", "|", "| ", "'", "a,", "--a ", "memory.", "x=1", "1+", "(a) ", "= ",
                       "1 = ", "- ", "{", "}", "a-", "~a")
