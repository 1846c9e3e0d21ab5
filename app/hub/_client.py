"""Hugging Face Hub client: `config.json` (+ the safetensors index) of a repo, pinned to a commit.

Web-free and synchronous (httpx). Safety rules, all enforced here:
- Requests go to one host, the Hub (`VRAM_HUB_URL`, default https://huggingface.co), as
  `{hub}/{repo}/resolve/{revision}/{file}`. Redirects are followed by hand (at most 5): to the Hub itself,
  or, over https only, to the Hub's file CDNs in `CDN_HOSTS` (LFS and Xet files are served from there);
  any other host is refused before it is contacted. `HF_TOKEN`, if set, is sent to the Hub only.
- Repo ids, revisions and file names are checked against the Hub's own rules before any request.
- 5 s timeouts (connect, read, and the whole body; `VRAM_HUB_TIMEOUT` overrides), and one deadline for the
  whole fetch, response headers and redirects included, one timeout past the body's (a watchdog shuts the
  fetch's sockets at it, so a Hub that drips its headers cannot hold a thread); a size cap on every body,
  counted in raw bytes (declared length checked first, then the stream is cut at the cap). Bodies are asked
  for and accepted only in identity encoding: an encoded reply (gzip, ...) is an error, never decoded.
- At most MAX_CONCURRENT fetches at once in this process; one more is a 503 (HubUnavailable) at once.
- Answers are kept in an LRU cache keyed by (hub, repo, revision, file); a branch name such as `main`
  is therefore resolved once per process.
- `VRAM_OFFLINE=1` turns fetching off: nothing is requested, and ids not in the catalog are unknown (404).
Errors are the typed ones of app/hub/_errors.py (404, 422 or 503, never a 500).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
from pydantic import BaseModel, Field

from app.hub._errors import (
    HubBadFile,
    HubDisabled,
    HubGated,
    HubNotFound,
    HubRefused,
    HubUnavailable,
)
from app.hub._names import COMMIT, validate_filename, validate_repo_id, validate_revision

__all__ = ["COMMIT", "HubConfig", "HubSettings", "fetch_config", "file_url", "http_get", "validate_filename",
           "validate_repo_id", "validate_revision"]

HUB_URL = "https://huggingface.co"
TIMEOUT_S = 5.0
MAX_REDIRECTS = 5
MAX_CONCURRENT = 8  # Hub fetches at once per process; the thread pool (anyio: 40 threads) keeps the rest
DEADLINE_GRACE = 0.25  # s past its deadline before the watchdog cuts the sockets (the body check speaks first)
CONFIG_CAP = 4 << 20  # config.json: the largest released ones are a few hundred KB
INDEX_CAP = 32 << 20  # model.safetensors.index.json: DeepSeek-V3's (~92k tensors) is under 10 MB
# The Hub serves LFS/Xet files from these hosts (302 from /resolve/): huggingface_hub's downloads and
# public firewall allow-lists name cdn-lfs*.hf.co, cdn-lfs*.huggingface.co, cas-bridge.xethub.hf.co
# and the region-scoped Xet CDN <region>.aws.cdn.hf.co.
CDN_HOSTS = re.compile(
    r"cdn-lfs(-[a-z0-9-]+)?\.(hf\.co|huggingface\.co)|cas-bridge\.xethub\.hf\.co|[a-z0-9-]+\.aws\.cdn\.hf\.co")


def _seconds(text: str | None) -> float:
    """VRAM_HUB_TIMEOUT as seconds in (0, 60]; TIMEOUT_S when unset or not such a number."""
    try:
        value = float(text or TIMEOUT_S)
    except ValueError:
        return TIMEOUT_S
    return value if 0 < value <= 60 else TIMEOUT_S


@dataclass(frozen=True)
class HubSettings:
    """Where and how to fetch; read from the environment on each call (`HubSettings.from_env()`)."""

    base_url: str = HUB_URL
    offline: bool = False
    token: str | None = None
    timeout: float = TIMEOUT_S
    extra_hosts: tuple[str, ...] = ()  # host[:port] allowed as redirect targets besides CDN_HOSTS

    @classmethod
    def from_env(cls) -> HubSettings:
        env = os.environ
        extra = tuple(h.strip().lower() for h in env.get("VRAM_HUB_REDIRECT_HOSTS", "").split(",") if h.strip())
        return cls(base_url=env.get("VRAM_HUB_URL", HUB_URL).rstrip("/"),
                   offline=env.get("VRAM_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"},
                   token=env.get("HF_TOKEN") or None,
                   timeout=_seconds(env.get("VRAM_HUB_TIMEOUT")), extra_hosts=extra)


@dataclass(frozen=True)
class Fetched:
    """One body from the Hub: its bytes, the commit the Hub resolved, the file's full size if known."""

    body: bytes
    commit: str | None
    url: str
    status: int
    file_size: int | None
    start: int = 0  # first byte of `body` in the file (Content-Range of a 206)


class HubConfig(BaseModel):
    """A repo's config.json as the Hub served it, with the commit it came from."""

    repo: str = Field(description="Repo id, owner/name.")
    revision: str = Field(description="The commit sha the Hub resolved (X-Repo-Commit), else the asked revision.")
    pinned: bool = Field(description="True when `revision` is a commit sha the Hub reported.")
    requested_revision: str = Field(description="The revision asked for (default `main`).")
    source_url: str = Field(description="Public URL of the config.json at `revision`.")
    config: dict[str, Any] = Field(description="The parsed config.json.")
    index_total_size: int | None = Field(
        None, description="`metadata.total_size` of model.safetensors.index.json (bytes), when present.")
    index_url: str | None = Field(None, description="Public URL of that index, when present.")
    notes: list[str] = Field(default_factory=list, description="What could not be pinned or read, and why.")


def file_url(settings: HubSettings, repo: str, revision: str, filename: str, view: str = "resolve") -> str:
    """`{hub}/{repo}/{resolve|blob}/{revision}/{file}`, each part percent-encoded."""
    return f"{settings.base_url}/{repo}/{view}/{quote(revision, safe='')}/{quote(filename)}"


# --- transport ----------------------------------------------------------------------------------------

def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _check_target(settings: HubSettings, url: str) -> bool:
    """True for the Hub itself; False for an allowed CDN; HubRefused for anything else."""
    scheme, netloc = _origin(url)
    if (scheme, netloc) == _origin(settings.base_url):
        return True
    host = urlsplit(url).hostname or ""
    if netloc in settings.extra_hosts or (scheme == "https" and CDN_HOSTS.fullmatch(host)
                                          and urlsplit(url).port in (None, 443)):
        return False
    raise HubRefused(f"the Hugging Face Hub redirected to {scheme}://{netloc}, which is not on the allow-list "
                     "(the Hub and its file CDNs); nothing was requested from it")


def _raise_for_status(r: httpx.Response, repo: str, filename: str, field: str) -> None:
    """Map the Hub's answers (X-Error-Code as huggingface_hub reads it) to our typed errors."""
    code = r.headers.get("X-Error-Code", "")
    if r.status_code in (401, 403) and code != "RepoNotFound":
        raise HubGated(field, repo, r.status_code, gated=code == "GatedRepo")
    if r.status_code in (401, 404):
        what = {"RevisionNotFound": "no such revision", "EntryNotFound": f"no file {filename!r}",
                "RepoNotFound": "no such repo (or it is private)"}.get(code, f"{filename!r} not found")
        raise HubNotFound(repo, f"{what} (HTTP {r.status_code})")
    if r.status_code == 429 or r.status_code >= 500:
        raise HubUnavailable(f"the Hugging Face Hub answered HTTP {r.status_code} for {repo}/{filename}")
    if r.status_code not in (200, 206):
        raise HubUnavailable(f"the Hugging Face Hub answered HTTP {r.status_code} for {repo}/{filename}")


def _read(r: httpx.Response, cap: int, deadline: float, what: str, field: str, cut: bool) -> bytes:
    """The body, at most `cap` raw bytes: over it, cut there (`cut`) or HubBadFile; past `deadline`, 503.

    Read raw (httpx's iter_raw): a reply in any Content-Encoding but identity is refused before a byte
    of it is read, so a compressed bomb is never inflated."""
    encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise HubUnavailable(f"the Hugging Face Hub sent {what} with Content-Encoding {encoding[:40]!r}; "
                             "only identity (uncompressed) bodies are read")
    declared = r.headers.get("Content-Length", "")
    if not cut and declared.isdigit() and int(declared) > cap:
        raise HubBadFile(field, f"{what} is {int(declared):,} bytes, over the {cap:,}-byte cap")
    buf = bytearray()
    for chunk in r.iter_raw():
        buf += chunk
        if len(buf) >= cap and cut:
            return bytes(buf[:cap])
        if len(buf) > cap:
            raise HubBadFile(field, f"{what} is over the {cap:,}-byte cap")
        if time.monotonic() > deadline:
            raise HubUnavailable(f"the Hugging Face Hub took over the time limit to send {what}")
    return bytes(buf)


def _sizes(r: httpx.Response) -> tuple[int | None, int]:
    """(the whole file's size if the answer says it, the first byte of the body in the file)."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", r.headers.get("Content-Range", "").strip())
    length = r.headers.get("Content-Length", "")
    if r.status_code == 206 and match:
        return (int(match[2]) if match[2].isdigit() else None), int(match[1])
    return (int(length) if r.status_code == 200 and length.isdigit() else None), 0


class _Watchdog:
    """Shuts every socket a fetch opened once its deadline passes: httpx's timeouts are per read, so a server
    that sends a byte of its headers every few seconds would otherwise hold the fetch for ever. The sockets
    come from httpcore's `trace` extension (connection.connect_tcp.complete)."""

    def __init__(self, seconds: float) -> None:
        self.fired, self._socks, self._lock = False, [], threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete" or info.get("return_value") is None:
            return
        sock = info["return_value"].get_extra_info("socket")
        with self._lock:
            self._socks.append(sock)
            if self.fired:
                self._shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._socks:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket | None) -> None:
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv in the fetching thread
        except OSError:
            pass


_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT)


def http_get(settings: HubSettings, repo: str, revision: str, filename: str, *, cap: int, field: str = "model",
             byte_range: tuple[int, int] | None = None) -> Fetched:
    """GET one repo file (or the inclusive `byte_range` of it) under the safety rules above."""
    if settings.offline:
        raise HubDisabled(repo)
    if not _SLOTS.acquire(blocking=False):
        raise HubUnavailable(f"this server is already fetching {MAX_CONCURRENT} files from the Hugging Face Hub; "
                             "try again in a few seconds")
    try:
        return _get(settings, repo, revision, filename, cap, field, byte_range)
    finally:
        _SLOTS.release()


def _get(settings: HubSettings, repo: str, revision: str, filename: str, cap: int, field: str,
         byte_range: tuple[int, int] | None) -> Fetched:
    url, commit, what = file_url(settings, repo, revision, filename), None, f"{repo}/{filename}"
    headers = {"User-Agent": "vram-calculator", "Accept-Encoding": "identity"}
    if byte_range:
        headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    allowed = settings.timeout * (4 if byte_range else 1)
    watchdog = _Watchdog(allowed + settings.timeout + DEADLINE_GRACE)  # body deadline + a timeout for headers
    try:
        # the client first (building its TLS context takes a while on a busy machine), then the clocks
        with httpx.Client(timeout=settings.timeout, follow_redirects=False, trust_env=False) as client, watchdog:
            deadline = time.monotonic() + allowed
            for _ in range(MAX_REDIRECTS + 1):
                hub = _check_target(settings, url)
                auth = {"Authorization": f"Bearer {settings.token}"} if hub and settings.token else {}
                with client.stream("GET", url, headers={**headers, **auth},
                                   extensions={"trace": watchdog.trace}) as r:
                    commit = commit or r.headers.get("X-Repo-Commit")
                    if r.is_redirect and "Location" in r.headers:
                        url = urljoin(url, r.headers["Location"])
                        continue
                    if r.status_code == 416 and byte_range:  # the range starts past the end of the file
                        return Fetched(b"", commit, url, 416, None, byte_range[0])
                    _raise_for_status(r, repo, filename, field)
                    body = _read(r, cap, deadline, what, field, cut=byte_range is not None)
                    return Fetched(body, commit, url, r.status_code, *_sizes(r))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        if watchdog.fired:
            raise HubUnavailable(f"the Hugging Face Hub did not answer within {settings.timeout:g} s for {what}: "
                                 f"the whole fetch took over its time limit of {allowed + settings.timeout:g} s"
                                 ) from exc
        if isinstance(exc, httpx.TimeoutException):
            raise HubUnavailable(f"the Hugging Face Hub did not answer within {settings.timeout:g} s "
                                 f"for {what} ({type(exc).__name__})") from exc
        raise HubUnavailable(f"could not reach the Hugging Face Hub for {what}: {exc or type(exc).__name__}") from exc
    raise HubUnavailable(f"the Hugging Face Hub redirected more than {MAX_REDIRECTS} times for {what}")


@lru_cache(maxsize=256)
def cached_get(settings: HubSettings, repo: str, revision: str, filename: str, cap: int,
               field: str = "model") -> Fetched:
    """http_get of a whole file, kept in an LRU cache keyed by (settings, repo, revision, file)."""
    return http_get(settings, repo, revision, filename, cap=cap, field=field)


@lru_cache(maxsize=256)
def cached_optional(settings: HubSettings, repo: str, revision: str, filename: str, cap: int) -> Fetched | None:
    """cached_get, with a file the repo does not have (404) cached as None."""
    try:
        return http_get(settings, repo, revision, filename, cap=cap)
    except HubNotFound:
        return None


def clear_cache() -> None:
    cached_get.cache_clear()
    cached_optional.cache_clear()


# --- config.json ---------------------------------------------------------------------------------------

def _json(fetched: Fetched, what: str, field: str) -> dict[str, Any]:
    try:
        data = json.loads(fetched.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HubBadFile(field, f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise HubBadFile(field, f"{what} is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise HubBadFile(field, f"{what} is not a JSON object (got {type(data).__name__})")
    return data


def _index_total(settings: HubSettings, repo: str, revision: str, notes: list[str]) -> int | None:
    """`metadata.total_size` of model.safetensors.index.json; None (with a note) when absent or unusable."""
    name = "model.safetensors.index.json"
    try:
        fetched = cached_optional(settings, repo, revision, name, INDEX_CAP)
        if fetched is None:
            return None  # single-file checkpoints have no index
        index = _json(fetched, f"{repo}/{name}", "model")
    except (HubBadFile, HubUnavailable) as exc:
        notes.append(f"{name} could not be read, so stored weight bytes are not cross-checked: {exc}")
        return None
    total = index.get("metadata", {}).get("total_size") if isinstance(index.get("metadata"), dict) else None
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        notes.append(f"{name} has no integer metadata.total_size; stored weight bytes are not cross-checked")
        return None
    return total


def fetch_config(repo_id: str, revision: str | None = None, *, settings: HubSettings | None = None,
                 field: str = "model") -> HubConfig:
    """config.json of `repo_id` at `revision` (default main), pinned to the commit the Hub reports.

    Also reads model.safetensors.index.json at the same commit when the repo has one.
    Raises: HubBadInput/HubGated/HubBadFile (422), HubNotFound/HubDisabled (404), HubUnavailable (503).
    """
    settings = settings or HubSettings.from_env()
    if settings.offline:
        raise HubDisabled(repo_id)
    repo, asked = validate_repo_id(repo_id, field), validate_revision(revision)
    got = cached_get(settings, repo, asked, "config.json", CONFIG_CAP, field)
    config = _json(got, f"{repo}/config.json", field)
    notes: list[str] = []
    pinned = bool(got.commit and COMMIT.fullmatch(got.commit))
    rev = got.commit if pinned and got.commit else asked
    if not pinned:
        notes.append(f"the Hub reported no commit for {repo}; the revision {asked!r} is not pinned")
    total = _index_total(settings, repo, rev, notes)
    index_url = file_url(settings, repo, rev, "model.safetensors.index.json", "blob") if total is not None else None
    return HubConfig(repo=repo, revision=rev, pinned=pinned, requested_revision=asked,
                     source_url=file_url(settings, repo, rev, "config.json", "blob"), config=config,
                     index_total_size=total, index_url=index_url, notes=notes)
