"""The Hub client against a real HTTP server on 127.0.0.1 (no mocked client).

The server (`FakeHub`) answers like huggingface.co's `/{repo}/resolve/{revision}/{file}`: `X-Repo-Commit`,
`X-Error-Code` on errors, HTTP range requests (206 + Content-Range, 416 past the end), and logs every
request with its Range header and the bytes it sent. GGUF fixtures are written with the `gguf` package's
GGUFWriter (header only; the tensor data is a sparse hole made with os.truncate).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from app.hub import (
    HubBadFile,
    HubBadInput,
    HubDisabled,
    HubGated,
    HubNotFound,
    HubRefused,
    HubSettings,
    HubUnavailable,
    fetch_config,
    fetch_gguf_header,
)
from app.hub import _client as hub
from app.hub import _gguf as hub_gguf
from app.hub._gguf import parse_ref
from app.hub._gguf_layout import GgufArray, parse_header

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
SHA = "0123456789abcdef0123456789abcdef01234567"
T = GGMLQuantizationType
Special = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    path: str
    range: str | None
    auth: str | None
    sent: int = 0


@dataclass
class FakeHub:
    """Files keyed by (repo, file); `special` answers keyed by the same; `seen` is the request log."""

    files: dict[tuple[str, str], bytes | Path] = field(default_factory=dict)
    special: dict[tuple[str, str], Special] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    commit: str | None = SHA
    url: str = ""


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> int:
    h.send_response(status)
    for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)
    return len(body)


def _serve_file(h: BaseHTTPRequestHandler, hub_: FakeHub, data: bytes | Path) -> int:
    size = data.stat().st_size if isinstance(data, Path) else len(data)
    commit = {"X-Repo-Commit": hub_.commit} if hub_.commit else {}
    rng = h.headers.get("Range")
    start, end, status = 0, size - 1, 200
    if rng:
        first, _, last = rng.removeprefix("bytes=").partition("-")
        start, end, status = int(first), min(int(last) if last else size - 1, size - 1), 206
        if start >= size:
            return _send(h, 416, b"", {"Content-Range": f"bytes */{size}", **commit})
    if isinstance(data, Path):
        with data.open("rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
    else:
        body = data[start:end + 1]
    extra = {"Content-Range": f"bytes {start}-{end}/{size}"} if status == 206 else {}
    return _send(h, status, body, {**commit, **extra, "Accept-Ranges": "bytes"})


def _handler(hub_: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen = Seen(self.path, self.headers.get("Range"), self.headers.get("Authorization"))
            hub_.seen.append(seen)
            parts = unquote(self.path.split("?")[0]).lstrip("/").split("/", 4)
            if len(parts) < 5 or parts[2] != "resolve":
                seen.sent = _send(self, 404, b"{}")
                return
            key, rev = ("/".join(parts[:2]), parts[4]), parts[3]
            try:
                if key in hub_.special:
                    hub_.special[key](self)
                elif not any(repo == key[0] for repo, _ in hub_.files):
                    seen.sent = _send(self, 401, b"{}", {"X-Error-Code": "RepoNotFound"})
                elif rev not in ("main", "v1.0", SHA):
                    seen.sent = _send(self, 404, b"{}", {"X-Error-Code": "RevisionNotFound"})
                elif key not in hub_.files:
                    seen.sent = _send(self, 404, b"{}", {"X-Error-Code": "EntryNotFound"})
                else:
                    seen.sent = _serve_file(self, hub_, hub_.files[key])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up, as it should after a cap or a timeout

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[], FakeHub]]:
    """Start FakeHub servers on 127.0.0.1 (free ports); all are shut down after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> FakeHub:
        hub_ = FakeHub()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub_))
        server.daemon_threads = True
        server.handle_error = lambda *a: None  # type: ignore[method-assign]
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        hub_.url = f"http://127.0.0.1:{server.server_address[1]}"
        servers.append(server)
        return hub_

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake(serve: Callable[[], FakeHub], monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    hub_ = serve()
    for name in ("VRAM_OFFLINE", "HF_TOKEN", "VRAM_HUB_REDIRECT_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VRAM_HUB_URL", hub_.url)
    # 2.5 s: a local answer on a loaded 2-core machine took over 0.5 s in CI; the slow handlers sleep 4 s
    monkeypatch.setenv("VRAM_HUB_TIMEOUT", "2.5")
    hub.clear_cache()
    hub_gguf.clear_cache()
    return hub_


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --- config.json ------------------------------------------------------------------------------------

def test_config_pinned_to_the_commit_with_the_index_total(fake: FakeHub) -> None:
    fake.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    fake.files[("acme/tiny-llama", "model.safetensors.index.json")] = fixture("model.safetensors.index.json")
    got = fetch_config("acme/tiny-llama")
    assert got.config == json.loads(fixture("config.json"))
    assert (got.revision, got.pinned, got.requested_revision) == (SHA, True, "main")
    assert got.source_url == f"{fake.url}/acme/tiny-llama/blob/{SHA}/config.json"
    assert got.index_total_size == json.loads(fixture("model.safetensors.index.json"))["metadata"]["total_size"]
    assert [s.path for s in fake.seen] == ["/acme/tiny-llama/resolve/main/config.json",
                                           f"/acme/tiny-llama/resolve/{SHA}/model.safetensors.index.json"]


def test_config_without_index_and_without_commit_says_so(fake: FakeHub) -> None:
    fake.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    fake.commit = None
    got = fetch_config("acme/tiny-llama", "v1.0")
    assert (got.revision, got.pinned, got.index_total_size) == ("v1.0", False, None)
    assert any("not pinned" in n for n in got.notes), got.notes


def test_config_answers_come_from_the_cache(fake: FakeHub) -> None:
    fake.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    first = fetch_config("acme/tiny-llama")
    requests = len(fake.seen)
    assert fetch_config("acme/tiny-llama") == first
    assert len(fake.seen) == requests


@pytest.mark.parametrize(("repo", "revision", "words"), [
    ("acme/nothing-here", None, "no such repo"),
    ("acme/tiny-llama", "no-such-branch", "no such revision"),
    ("acme/weights-only", None, "no file 'config.json'"),
], ids=["repo", "revision", "file"])
def test_missing_repo_revision_or_file_is_404(fake: FakeHub, repo: str, revision: str | None, words: str) -> None:
    fake.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    fake.files[("acme/weights-only", "model.safetensors")] = b"\0" * 8
    with pytest.raises(HubNotFound, match=words):
        fetch_config(repo, revision)


@pytest.mark.parametrize("status", [401, 403])
def test_gated_repo_is_422_with_the_reason(fake: FakeHub, status: int) -> None:
    fake.special[("meta-llama/Llama-3.1-8B", "config.json")] = lambda h: _send(
        h, status, b'{"error":"Access restricted"}', {"X-Error-Code": "GatedRepo"})
    with pytest.raises(HubGated) as err:
        fetch_config("meta-llama/Llama-3.1-8B")
    assert err.value.field == "model" and "is gated" in err.value.message and "HF_TOKEN" in err.value.message


def test_token_goes_to_the_hub_only(fake: FakeHub, serve: Callable[[], FakeHub], monkeypatch) -> None:
    cdn = serve()
    cdn.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("VRAM_HUB_REDIRECT_HOSTS", cdn.url.removeprefix("http://"))
    fake.special[("acme/tiny-llama", "config.json")] = lambda h: _send(
        h, 302, b"", {"Location": f"{cdn.url}/acme/tiny-llama/resolve/main/config.json", "X-Repo-Commit": SHA})
    got = fetch_config("acme/tiny-llama")
    assert got.config == json.loads(fixture("config.json")) and got.revision == SHA
    assert fake.seen[0].auth == "Bearer hf_secret"
    assert cdn.seen[0].auth is None


@pytest.mark.parametrize(("body", "words"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"model_type": "llama",', "not valid JSON"),
    (b"\xff\xfe not utf-8", "not valid JSON"),
    (b'["a list"]', "not a JSON object"),
], ids=["deep", "cut", "bytes", "list"])
def test_malformed_config_is_422_naming_the_file(fake: FakeHub, body: bytes, words: str) -> None:
    fake.files[("acme/broken", "config.json")] = body
    with pytest.raises(HubBadFile, match=words) as err:
        fetch_config("acme/broken")
    assert "acme/broken/config.json" in err.value.message


def test_oversized_declared_body_is_refused_before_reading(fake: FakeHub) -> None:
    fake.files[("acme/huge", "config.json")] = b" " * (hub.CONFIG_CAP + 1)
    with pytest.raises(HubBadFile, match="over the 4,194,304-byte cap"):
        fetch_config("acme/huge")


def test_oversized_stream_without_length_is_cut_at_the_cap(fake: FakeHub) -> None:
    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("X-Repo-Commit", SHA)
        h.end_headers()  # no Content-Length: HTTP/1.0 body until the connection closes
        for _ in range(hub.CONFIG_CAP // 65536 + 64):
            h.wfile.write(b" " * 65536)

    fake.special[("acme/endless", "config.json")] = endless
    with pytest.raises(HubBadFile, match="over the 4,194,304-byte cap"):
        fetch_config("acme/endless")


def test_index_problems_are_notes_not_failures(fake: FakeHub) -> None:
    fake.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    fake.files[("acme/tiny-llama", "model.safetensors.index.json")] = b'{"metadata": {}}'
    got = fetch_config("acme/tiny-llama")
    assert got.index_total_size is None and any("total_size" in n for n in got.notes), got.notes


def test_slow_answer_is_503(fake: FakeHub) -> None:
    fake.special[("acme/slow", "config.json")] = lambda h: time.sleep(4)
    started = time.monotonic()
    with pytest.raises(HubUnavailable, match="did not answer within 2.5 s"):
        fetch_config("acme/slow")
    assert time.monotonic() - started < 3.9


def test_trickling_body_hits_the_whole_body_deadline(fake: FakeHub) -> None:
    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        for _ in range(100):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.1)

    fake.special[("acme/trickle", "config.json")] = trickle
    with pytest.raises(HubUnavailable, match="time limit"):
        fetch_config("acme/trickle")


def test_hub_errors_and_refused_connections_are_503(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.special[("acme/down", "config.json")] = lambda h: _send(h, 502, b"bad gateway")
    with pytest.raises(HubUnavailable, match="HTTP 502"):
        fetch_config("acme/down")
    monkeypatch.setenv("VRAM_HUB_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(HubUnavailable, match="could not reach"):
        fetch_config("acme/down")


def test_redirect_to_a_foreign_host_is_refused_unrequested(fake: FakeHub, serve: Callable[[], FakeHub]) -> None:
    foreign = serve()
    foreign.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    fake.special[("acme/tiny-llama", "config.json")] = lambda h: _send(
        h, 302, b"", {"Location": f"{foreign.url}/acme/tiny-llama/resolve/main/config.json"})
    with pytest.raises(HubRefused, match="not on the allow-list"):
        fetch_config("acme/tiny-llama")
    assert foreign.seen == []


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://cas-bridge.xethub.hf.co/xet-bridge-us/abc?X-Amz=1", True),
    ("https://cdn-lfs.hf.co/repos/ab/cd/x", True),
    ("https://cdn-lfs-us-1.hf.co/repos/ab/cd/x", True),
    ("https://cdn-lfs.huggingface.co/repos/ab/cd/x", True),
    ("https://us.aws.cdn.hf.co/xet-bridge-us/x", True),
    ("http://cdn-lfs.hf.co/repos/x", False),  # plain http
    ("https://cdn-lfs.hf.co.evil.example/x", False),
    ("https://evilhf.co/x", False),
    ("https://cdn-lfs.hf.co:8443/x", False),
    ("https://127.0.0.1/x", False),
])
def test_redirect_allow_list(url: str, allowed: bool) -> None:
    settings = HubSettings()
    if allowed:
        assert hub._check_target(settings, url) is False  # allowed, and not the Hub (no token)
    else:
        with pytest.raises(HubRefused):
            hub._check_target(settings, url)


def test_offline_requests_nothing(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.files[("acme/tiny-llama", "config.json")] = fixture("config.json")
    monkeypatch.setenv("VRAM_OFFLINE", "1")
    with pytest.raises(HubDisabled, match="VRAM_OFFLINE"):
        fetch_config("acme/tiny-llama")
    with pytest.raises(HubDisabled):
        fetch_gguf_header("acme/tiny-llama:model.gguf")
    assert fake.seen == []


@pytest.mark.parametrize("repo", ["gpt2", "a/b/c", "../etc/passwd", "acme/..", "acme/-x", "acme/x.git",
                                  "acme/a--b", "acme/" + "x" * 97, "acme/caf\u00e9", "acme/x y"])
def test_bad_repo_ids_are_422_without_a_request(fake: FakeHub, repo: str) -> None:
    with pytest.raises(HubBadInput, match="not a Hugging Face repo id"):
        fetch_config(repo)
    assert fake.seen == []


@pytest.mark.parametrize("revision", ["../main", "/main", "main/", "a//b", "x" * 256, "m\u00e4in", "a b", ""])
def test_bad_revisions_are_422_without_a_request(fake: FakeHub, revision: str) -> None:
    with pytest.raises(HubBadInput, match="not a branch, tag or commit"):
        fetch_config("acme/tiny-llama", revision)
    assert fake.seen == []


# --- GGUF headers ----------------------------------------------------------------------------------------

N_VOCAB = 66_000  # "tok000000".. strings: a header of ~1.4 MB, so more than the first 1 MiB range
LLAMA = [  # (name, GGUF dims (ne0 first), type): a Llama-3-8B-sized layer; the data is a sparse hole
    ("token_embd.weight", (4096, 128256), T.Q4_K),
    ("blk.0.attn_q.weight", (4096, 4096), T.Q4_K),
    ("blk.0.attn_k.weight", (4096, 1024), T.Q4_K),
    ("blk.0.attn_v.weight", (4096, 1024), T.Q6_K),
    ("blk.0.ffn_down.weight", (14336, 4096), T.Q6_K),
    ("blk.0.attn_norm.weight", (4096,), T.F32),
    ("output.weight", (4096, 128256), T.Q6_K),
]


def ggml_bytes(dims: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    """Bytes per the ggml type's block layout (GGML_QUANT_SIZES: elements and bytes per block)."""
    block, size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(dims)) // block * size


def write_gguf(path: Path, tensors: list = LLAMA, split_max_tensors: int = 0, n_vocab: int = N_VOCAB) -> list[Path]:
    """Header-only GGUF file(s) written by GGUFWriter, each truncated (sparse) to its full size."""
    w = GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    w.add_block_count(1)
    w.add_context_length(131072)
    w.add_embedding_length(4096)
    w.add_head_count(32)
    w.add_head_count_kv(8)
    w.add_token_list([f"tok{i:06d}" for i in range(n_vocab)])
    for name, dims, qtype in tensors:
        w.add_tensor_info(name, tuple(reversed(dims)), np.dtype(np.float32), ggml_bytes(dims, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    names = w.format_shard_names(path)
    shard_tensors = [list(t.values()) for t in w.tensors]
    w.close()
    for name, infos in zip(names, shard_tensors, strict=True):
        data = sum(GGUFWriter.ggml_pad(ti.nbytes, 32) for ti in infos)
        os.truncate(name, GGUFWriter.ggml_pad(name.stat().st_size, 32) + data)
    return names


@pytest.fixture(scope="module")
def llama_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gguf(tmp_path_factory.mktemp("gguf") / "llama-q4_k_m.gguf")[0]


def assert_llama_header(reader, tensors: list = LLAMA) -> None:
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["llama.embedding_length"].contents() == 4096
    assert len(reader.fields["tokenizer.ggml.tokens"].contents()) == N_VOCAB
    got = [(t.name, tuple(int(d) for d in t.shape), t.tensor_type, t.n_bytes) for t in reader.tensors]
    assert got == [(n, d, q, ggml_bytes(d, q)) for n, d, q in tensors]


def test_gguf_header_only_through_range_requests(fake: FakeHub, llama_gguf: Path) -> None:
    fake.files[("acme/llama-gguf", "llama-q4_k_m.gguf")] = llama_gguf
    size = llama_gguf.stat().st_size
    assert size > 700 << 20  # ~750 MiB of (sparse) tensor data behind the header
    [got] = fetch_gguf_header("acme/llama-gguf", "llama-q4_k_m.gguf")
    assert_llama_header(got.reader)
    assert (got.file_size, got.revision, got.pinned) == (size, SHA, True)
    assert got.data_offset + got.data_size == size
    with llama_gguf.open("rb") as f:
        assert got.header == f.read(got.data_offset)
    # the fast walk agrees with the gguf package's reader, tensor by tensor and key by key
    reader = got.reader
    assert [(t.name, t.dims, t.type, t.n_bytes) for t in got.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), t.tensor_type, t.n_bytes) for t in reader.tensors]
    assert [got.data_offset + t.offset for t in got.tensors] == [t.data_offset for t in reader.tensors]
    scalars = {k: v for k, v in got.metadata.items() if not isinstance(v, GgufArray)}
    assert scalars == {k: reader.fields[k].contents() for k in scalars}
    assert got.metadata["tokenizer.ggml.tokens"] == GgufArray(8, N_VOCAB)
    assert got.requests == len(fake.seen) == 2  # 1 MiB, then the rest of the header
    assert all(s.range for s in fake.seen), fake.seen
    sent = sum(s.sent for s in fake.seen)
    assert sent == got.bytes_fetched < got.data_offset + (1 << 21), (sent, got.data_offset)
    assert fake.seen[1].path == f"/acme/llama-gguf/resolve/{SHA}/llama-q4_k_m.gguf"  # later ranges pinned


@pytest.mark.parametrize("ref", [
    "{url}/acme/llama-gguf/blob/main/llama-q4_k_m.gguf",
    "{url}/acme/llama-gguf/resolve/main/llama-q4_k_m.gguf?download=true",
    "acme/llama-gguf:llama-q4_k_m.gguf",
], ids=["blob", "resolve", "repo:file"])
def test_gguf_reference_forms(fake: FakeHub, llama_gguf: Path, ref: str) -> None:
    fake.files[("acme/llama-gguf", "llama-q4_k_m.gguf")] = llama_gguf
    [got] = fetch_gguf_header(ref.format(url=fake.url))
    assert (got.repo, got.filename) == ("acme/llama-gguf", "llama-q4_k_m.gguf")


@pytest.mark.parametrize("ref", [
    "https://evil.example/acme/x/blob/main/m.gguf", "acme/x", "acme/x:../m.gguf", "acme/x:m.safetensors",
    "acme/x:/m.gguf", "{url}/acme/x/tree/main/m.gguf",
])
def test_bad_gguf_references_are_422_without_a_request(fake: FakeHub, ref: str) -> None:
    with pytest.raises(HubBadInput):
        fetch_gguf_header(ref.format(url=fake.url))
    assert fake.seen == []


def test_production_urls_parse_only_for_the_hub() -> None:
    url = "https://huggingface.co/bartowski/Qwen2.5-7B-Instruct-GGUF/blob/refs%2Fpr%2F1/q/Q4_K_M.gguf"
    assert parse_ref(url, HubSettings()) == ("bartowski/Qwen2.5-7B-Instruct-GGUF", "q/Q4_K_M.gguf", "refs/pr/1")
    with pytest.raises(HubBadInput):
        parse_ref(url.replace("huggingface.co", "huggingface.co.evil.example"), HubSettings())


def test_split_gguf_fetches_every_part_header(fake: FakeHub, tmp_path: Path) -> None:
    parts = write_gguf(tmp_path / "llama.gguf", split_max_tensors=3, n_vocab=100)
    assert [p.name for p in parts] == [f"llama-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    for p in parts:
        fake.files[("acme/split", p.name)] = p
    got = fetch_gguf_header(f"{fake.url}/acme/split/blob/main/llama-00002-of-00003.gguf")
    assert [g.filename for g in got] == [p.name for p in parts]
    readers = [g.reader for g in got]
    assert [r.fields["split.no"].contents() for r in readers] == [0, 1, 2]
    assert [t.name for r in readers for t in r.tensors] == [n for n, _, _ in LLAMA]
    assert all(s.range for s in fake.seen)
    assert all(g.data_offset + g.data_size == p.stat().st_size for g, p in zip(got, parts, strict=True))


def test_non_gguf_file_is_422(fake: FakeHub) -> None:
    fake.files[("acme/x", "m.gguf")] = b"<!doctype html><p>not a model</p>" * 10
    with pytest.raises(HubBadFile, match="not the magic b'GGUF'"):
        fetch_gguf_header("acme/x:m.gguf")


def test_truncated_gguf_is_422(fake: FakeHub, llama_gguf: Path) -> None:
    with llama_gguf.open("rb") as f:
        fake.files[("acme/x", "m.gguf")] = f.read(1_100_000)  # ends inside the vocabulary
    with pytest.raises(HubBadFile, match="truncated GGUF: the file ends at byte 1,100,000"):
        fetch_gguf_header("acme/x:m.gguf")


def test_gguf_whose_tensors_pass_the_end_of_the_file_is_422(fake: FakeHub, llama_gguf: Path) -> None:
    with llama_gguf.open("rb") as f:
        fake.files[("acme/x", "m.gguf")] = f.read(3 << 20)  # whole header, a little data, then the end
    with pytest.raises(HubBadFile, match="tensor infos declare"):
        fetch_gguf_header("acme/x:m.gguf")


def test_gguf_header_over_the_cap_is_422(fake: FakeHub, llama_gguf: Path, monkeypatch) -> None:
    monkeypatch.setattr(hub_gguf, "HEADER_CAP", 1 << 20)
    fake.files[("acme/x", "m.gguf")] = llama_gguf
    with pytest.raises(HubBadFile, match="over the 1,048,576-byte cap"):
        fetch_gguf_header("acme/x:m.gguf")
    assert sum(s.sent for s in fake.seen) <= 1 << 20


def test_gguf_server_that_ignores_range_is_cut(fake: FakeHub, llama_gguf: Path, monkeypatch) -> None:
    monkeypatch.setattr(hub_gguf, "FIRST_RANGE", 64 << 10)
    with llama_gguf.open("rb") as f:
        whole = f.read(4 << 20)
    fake.special[("acme/x", "m.gguf")] = lambda h: _send(h, 200, whole, {"X-Repo-Commit": SHA})
    with pytest.raises(HubBadFile, match="tensor infos declare"):  # it read the header, then saw the size
        fetch_gguf_header("acme/x:m.gguf")


def test_gguf_missing_and_gated_files(fake: FakeHub, llama_gguf: Path) -> None:
    fake.files[("acme/x", "m.gguf")] = llama_gguf
    with pytest.raises(HubNotFound, match="no file 'other.gguf'"):
        fetch_gguf_header("acme/x:other.gguf")
    fake.special[("acme/gated", "m.gguf")] = lambda h: _send(h, 401, b"{}", {"X-Error-Code": "GatedRepo"})
    with pytest.raises(HubGated) as err:
        fetch_gguf_header("acme/gated:m.gguf")
    assert err.value.field == "gguf"


def test_parse_header_of_uploaded_bytes(llama_gguf: Path) -> None:
    with llama_gguf.open("rb") as f:
        head = f.read(2 << 20)
    assert_llama_header(parse_header(head))
    with pytest.raises(HubBadFile, match="truncated GGUF header"):
        parse_header(head[:1000])
    with pytest.raises(HubBadFile, match="not the magic"):
        parse_header(b"PK\x03\x04" + head[4:])


# --- the API: repo ids not in the catalog ------------------------------------------------------------------

QWEN7_CONFIG = Path(__file__).parent.parent / "model_specs" / "configs" / "qwen2.5-7b-instruct" / "config.json"


@pytest.fixture
def qwen_copy(fake: FakeHub) -> FakeHub:
    """A repo the catalog does not know, holding Qwen2.5-7B-Instruct's config.json and the Hub's index total."""
    fake.files[("acme/qwen-copy", "config.json")] = QWEN7_CONFIG.read_bytes()
    fake.files[("acme/qwen-copy", "model.safetensors.index.json")] = fixture("qwen2.5-7b-instruct.index.json")
    return fake


def test_api_fetches_an_unknown_repo_and_names_the_commit(client, qwen_copy: FakeHub) -> None:
    r = client.get("/api/vram", params={"model": "acme/qwen-copy", "context": 8192})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["hub"]["revision"] == SHA and got["hub"]["pinned"] is True
    assert got["hub"]["config_url"] == f"{qwen_copy.url}/acme/qwen-copy/blob/{SHA}/config.json"
    # the Hub's published total_size for Qwen2.5-7B-Instruct equals our bf16 count to the byte
    assert (got["hub"]["index_total_size"], got["hub"]["stored_bytes"]) == (15_231_233_024, 15_231_233_024)
    assert got["hub"]["matches_index"] is True
    assert any(SHA in a for a in got["assumptions"]) and any("cross-checked" in a for a in got["assumptions"])
    same = client.get("/api/vram", params={"model": "qwen2.5-7b-instruct", "context": 8192}).json()
    assert got["breakdown"] == same["breakdown"] and same["hub"] is None


def test_api_post_and_weights_take_hub_repo_ids(client, qwen_copy: FakeHub) -> None:
    r = client.post("/api/vram", json={"model": "acme/qwen-copy", "context": 4096})
    assert r.status_code == 200 and r.json()["hub"]["revision"] == SHA, r.text
    w = client.get("/api/weights", params={"model": "acme/qwen-copy"})
    assert w.status_code == 200 and w.json()["total_bytes"] == 15_231_233_024, w.text


def test_api_reports_an_index_mismatch_as_a_warning(client, qwen_copy: FakeHub) -> None:
    qwen_copy.files[("acme/qwen-copy", "model.safetensors.index.json")] = fixture("qwen2.5-3b-instruct.index.json")
    got = client.get("/api/vram", params={"model": "acme/qwen-copy"}).json()
    assert got["hub"]["matches_index"] is False
    assert any(f"{15_231_233_024 - 6_171_877_376:+,} bytes" in w for w in got["warnings"]), got["warnings"]


def test_api_catalog_repo_ids_are_not_fetched(client, qwen_copy: FakeHub) -> None:
    r = client.get("/api/vram", params={"model": "Qwen/Qwen2.5-7B-Instruct"})
    assert r.status_code == 200 and r.json()["hub"] is None
    assert qwen_copy.seen == []


@pytest.mark.parametrize(("model", "status", "words"), [
    ("acme/nothing-here", 404, "no such repo"),
    ("acme/gated", 422, "is gated"),
    ("acme/slow", 503, "did not answer within"),
    ("acme/broken", 422, "not valid JSON"),
    ("acme/unknown-arch", 422, "model_type"),
    ("acme/a--b", 422, "not a Hugging Face repo id"),
])
def test_api_hub_failures_are_answered_not_500(client, qwen_copy: FakeHub, model: str, status: int,
                                              words: str) -> None:
    qwen_copy.special[("acme/gated", "config.json")] = lambda h: _send(h, 401, b"{}", {"X-Error-Code": "GatedRepo"})
    qwen_copy.special[("acme/slow", "config.json")] = lambda h: time.sleep(4)
    qwen_copy.files[("acme/broken", "config.json")] = b"{"
    qwen_copy.files[("acme/unknown-arch", "config.json")] = b'{"model_type": "not-a-model"}'
    r = client.get("/api/vram", params={"model": model})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    text = detail if isinstance(detail, str) else detail[0]["msg"]
    assert words in text, text
    if status == 422:
        assert detail[0]["loc"] == ["query", "model"]


def test_api_offline_unknown_repo_is_404_without_a_request(client, qwen_copy: FakeHub, monkeypatch) -> None:
    monkeypatch.setenv("VRAM_OFFLINE", "1")
    r = client.get("/api/vram", params={"model": "acme/qwen-copy"})
    assert r.status_code == 404 and "VRAM_OFFLINE" in r.json()["detail"]
    assert qwen_copy.seen == []


def test_gguf_ranges_follow_the_hub_redirect_to_its_cdn(fake: FakeHub, serve: Callable[[], FakeHub],
                                                        llama_gguf: Path, monkeypatch) -> None:
    cdn = serve()
    cdn.commit = None  # as on huggingface.co, the commit comes from the Hub's 302, not from the CDN
    cdn.files[("blobs/sha256", "llama.gguf")] = llama_gguf
    monkeypatch.setenv("VRAM_HUB_REDIRECT_HOSTS", cdn.url.removeprefix("http://"))
    fake.special[("acme/lfs", "m.gguf")] = lambda h: _send(
        h, 302, b"", {"Location": f"{cdn.url}/blobs/sha256/resolve/main/llama.gguf", "X-Repo-Commit": SHA})
    [got] = fetch_gguf_header("acme/lfs:m.gguf")
    assert (got.revision, got.pinned, got.file_size) == (SHA, True, llama_gguf.stat().st_size)
    assert [s.range for s in cdn.seen] == [s.range for s in fake.seen] and all(s.range for s in cdn.seen)
    assert sum(s.sent for s in cdn.seen) == got.bytes_fetched
