"""A Hub GGUF (`hf=owner/name:file.gguf` or its URL) through app.hub, against a real local HTTP server.

The server on 127.0.0.1 serves header-exact sparse GGUFs with HTTP range requests, as the Hub does; the
app is pointed at it with VRAM_HUB_URL. Only header bytes may be requested.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.catalog import Catalog
from app.hub._gguf import clear_cache
from app.main import create_app
from app.measure.llamacpp_gguf import write_sparse_gguf

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _handler(root: Path, served: list[int]) -> type[BaseHTTPRequestHandler]:
    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)", self.path)
            path = root / m[2] if m else None
            if path is None or not path.is_file():
                self.send_response(404)
                self.end_headers()
                return
            size = path.stat().st_size
            a, b = (int(x) for x in re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers["Range"]).groups())
            b = min(b, size - 1)
            with path.open("rb") as f:
                f.seek(a)
                body = f.read(b - a + 1)
            served.append(b + 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            self.wfile.write(body)

    return Hub


@pytest.fixture(scope="module")
def hub(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[int], Path]]:
    root = tmp_path_factory.mktemp("hub")
    write_sparse_gguf(catalog.model("llama-3.1-8b"), "q4_k_m", root / "Llama-Q4_K_M.gguf")
    write_sparse_gguf(catalog.model("llama-3.1-8b"), "q4_k_m", root / "Split.gguf", split_max_tensors=100)
    served: list[int] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, served))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", served, root
    server.shutdown()
    server.server_close()


@pytest.fixture()
def hub_client(hub: tuple[str, list[int], Path], monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("VRAM_HUB_URL", hub[0])
    monkeypatch.delenv("VRAM_OFFLINE", raising=False)
    clear_cache()
    return TestClient(create_app())


def test_hub_file_gives_the_uploads_answer(hub_client: TestClient, hub: tuple[str, list[int], Path]):
    url, served, root = hub
    with (root / "Llama-Q4_K_M.gguf").open("rb") as f:
        local = f.read(1 << 20)
    upload = hub_client.post("/api/gguf", files={"file": ("Llama-Q4_K_M.gguf", local)},
                             data={"context": "8192"}).json()
    served.clear()
    got = hub_client.get("/api/gguf", params={"hf": "org/repo:Llama-Q4_K_M.gguf", "context": "8192"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["gguf_file"]["tensor_bytes"] == upload["gguf_file"]["tensor_bytes"] == 4_912_898_304
    assert body["breakdown"] == upload["breakdown"]
    assert max(served) <= 1 << 20  # header bytes only: the tensor data (4.9 GB) is never requested


def test_hub_split_file_and_url_form(hub_client: TestClient, hub: tuple[str, list[int], Path]):
    url, _, _ = hub
    got = hub_client.post("/api/gguf", data={"hf": f"{url}/org/repo/blob/main/Split-00001-of-00003.gguf"})
    assert got.status_code == 200, got.text
    assert got.json()["gguf_file"]["parts"] == 3
    assert got.json()["gguf_file"]["tensor_bytes"] == 4_912_898_304


def test_hub_errors_name_the_field(hub_client: TestClient):
    missing = hub_client.get("/api/gguf", params={"hf": "org/repo:nope.gguf"})
    assert missing.status_code == 404
    bad = hub_client.get("/api/gguf", params={"hf": "not a reference"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "hf"
