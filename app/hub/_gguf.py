"""GGUF headers from the Hugging Face Hub: HTTP range requests for the header bytes only, never tensor data.

Same host and safety rules as app/hub/_client.py (one host plus the Hub's file CDNs, 5 s timeouts, a cap on
every body, the LRU cache, VRAM_OFFLINE). The first request asks for bytes 0..1 MiB; while the header
walk (app/hub/_gguf_layout.py) says the header continues, the next request asks for the following bytes
(at least double what is held), up to HEADER_CAP (64 MiB; a Llama-3 vocabulary header is ~8 MiB).
Split files (`name-00001-of-00003.gguf`) are fetched part by part, each part's header alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from gguf import GGUFReader

from app.hub._client import (
    COMMIT,
    HUB_URL,
    HubSettings,
    file_url,
    http_get,
    validate_filename,
    validate_repo_id,
    validate_revision,
)
from app.hub._errors import HubBadFile, HubBadInput, HubDisabled, HubNotFound, HubUnavailable
from app.hub._gguf_layout import Layout, NeedMore, TensorInfo, layout, parse_header
from app.hub._names import HF_FILE_PATTERN

FIRST_RANGE = 1 << 20
HEADER_CAP = 64 << 20
MAX_PARTS = 256
MAX_REQUESTS = 16  # per file: 1 MiB doubling reaches the cap in 7
SPLIT = re.compile(r"(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf")  # llama.cpp's gguf-split names
HUB_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}
URL_PATH = re.compile(r"/(?P<repo>[^/]+/[^/]+)/(?:blob|resolve)/(?P<rev>[^/]+)/(?P<file>.+)")


@dataclass(frozen=True)
class GgufHeader:
    """One GGUF file's header as the Hub served it: the bytes before the tensor data, and where it came from."""

    repo: str
    filename: str
    revision: str  # the commit sha the Hub reported (X-Repo-Commit), else the asked revision
    pinned: bool
    source_url: str  # public URL of the file at `revision`
    header: bytes = field(repr=False)  # bytes 0..data_offset: KV metadata, tensor infos, alignment padding
    data_offset: int  # where tensor data starts
    data_size: int  # bytes of tensor data the tensor infos declare
    file_size: int | None  # the whole file's size as the Hub reported it (Content-Range)
    bytes_fetched: int  # bytes transferred for this header
    requests: int  # range requests made
    metadata: dict[str, Any] = field(repr=False)  # key -> number, bool, str, or GgufArray (item type, count)
    tensors: tuple[TensorInfo, ...] = field(repr=False)  # name, dims (ne0 first), ggml type, offset, n_bytes

    @cached_property
    def reader(self) -> GGUFReader:
        """The `gguf` package's reader over this header (tensor data is a sparse hole, never fetched).

        Built on first use: GGUFReader takes seconds on a full tokenizer vocabulary (6.5 s for 80k
        tokens on the 2-core test machine, busy), so the fetch itself only walks the header
        (_gguf_layout), which already gives `metadata` (arrays summarized) and `tensors`.
        """
        return parse_header(self.header, f"{self.repo}/{self.filename}")


def parse_ref(ref: str, settings: HubSettings | None = None, field: str = "gguf") -> tuple[str, str, str | None]:
    """(repo, file, revision) from `https://huggingface.co/{repo}/blob|resolve/{rev}/{file}` or `repo:file`."""
    settings = settings or HubSettings.from_env()
    ref = ref if isinstance(ref, str) else ""
    if settings.base_url == HUB_URL and not re.fullmatch(HF_FILE_PATTERN, ref):
        raise HubBadInput(field, f"{field} {ref[:200]!r} is not a GGUF on the Hugging Face Hub: "
                                 f"{HUB_URL}/owner/name/blob/revision/file.gguf or owner/name:file.gguf, names in "
                                 "A-Z a-z 0-9 . _ - (the file's path also + @ ( ) [ ] / and spaces; no %-escapes)")
    if ref.startswith(("http://", "https://")):
        parts = urlsplit(ref)
        base = urlsplit(settings.base_url)
        ours = (parts.scheme, parts.netloc.lower()) == (base.scheme, base.netloc.lower()) or (
            settings.base_url == HUB_URL and parts.scheme == "https" and parts.netloc.lower() in HUB_HOSTS)
        match = URL_PATH.fullmatch(parts.path)
        if not ours or not match:
            raise HubBadInput(field, f"{field} {ref[:200]!r} is not a Hugging Face file URL: "
                                     f"{settings.base_url}/owner/name/blob/revision/file.gguf")
        return match["repo"], unquote(match["file"]), unquote(match["rev"])
    repo, sep, filename = ref.partition(":")
    if not sep:
        raise HubBadInput(field, f"{field} {ref[:200]!r} is neither a Hugging Face file URL nor owner/name:file.gguf")
    return repo, filename, None


def _check_gguf_name(filename: str, field: str) -> str:
    validate_filename(filename, field)
    if not filename.endswith(".gguf"):
        raise HubBadInput(field, f"{field} {filename[:200]!r} is not a .gguf file")
    return filename


def part_names(filename: str) -> list[str]:
    """Every part of a split GGUF (`x-00002-of-00003.gguf` -> parts 1..3), or just `filename`."""
    match = SPLIT.fullmatch(filename)
    if not match:
        return [filename]
    count = int(match["count"])
    if not 1 <= int(match["no"]) <= count <= MAX_PARTS:
        raise HubBadInput("gguf", f"{filename!r}: a split GGUF has parts 1 to N, N at most {MAX_PARTS}")
    return [f"{match['stem']}-{no:05d}-of-{count:05d}.gguf" for no in range(1, count + 1)]


def _next_target(need: int, held: int, size: int | None, what: str, field: str) -> int:
    if need > HEADER_CAP:
        raise HubBadFile(field, f"{what}: its GGUF header is over the {HEADER_CAP:,}-byte cap "
                                f"(it needs at least {need:,} bytes)")
    if size is not None and held >= size:
        raise HubBadFile(field, f"{what} is a truncated GGUF: the file ends at byte {size:,}, inside its header "
                                f"(which needs at least {need:,} bytes)")
    target = min(HEADER_CAP, max(need, 2 * held))
    return min(target, size) if size is not None else target


def _fetch_one(settings: HubSettings, repo: str, rev: str, filename: str, field: str) -> GgufHeader:
    """Range requests until the header walk completes; the first answer pins the commit for the rest."""
    what, buf, size, commit, requests, target = f"{repo}/{filename}", b"", None, None, 0, FIRST_RANGE
    ranged = True  # False once the server ignores Range (200): later requests restart at byte 0
    while True:
        start = len(buf) if ranged else 0
        if requests >= MAX_REQUESTS:
            raise HubUnavailable(f"the Hugging Face Hub sent {what}'s header in too small pieces")
        got = http_get(settings, repo, rev, filename, cap=target - start, field=field, byte_range=(start, target - 1))
        requests += 1
        if got.status == 206 and got.start != start:
            raise HubUnavailable(f"the Hugging Face Hub answered bytes from {got.start:,} for {what}, "
                                 f"asked from {start:,}")
        ranged = got.status in (206, 416)
        buf = buf[:start] + got.body
        size = got.file_size if got.file_size is not None else size
        if got.status == 416 or not got.body:
            size = len(buf)
        if commit is None and got.commit and COMMIT.fullmatch(got.commit):
            commit = rev = got.commit  # later ranges from the same commit
        try:
            shape = layout(buf, what, field)
            break
        except NeedMore as need:
            target = _next_target(need.needed, len(buf), size, what, field)
    return _result(settings, repo, filename, rev, commit is not None, buf, shape, size, requests)


def _result(settings: HubSettings, repo: str, filename: str, rev: str, pinned: bool, buf: bytes, shape: Layout,
            size: int | None, requests: int) -> GgufHeader:
    what = f"{repo}/{filename}"
    if size is not None and shape.data_offset + shape.data_size > size:
        raise HubBadFile("gguf", f"{what} is a truncated GGUF: its tensor infos declare "
                                 f"{shape.data_offset + shape.data_size:,} bytes, the file has {size:,}")
    header = buf[:shape.data_offset].ljust(shape.data_offset, b"\0")  # GGUF pads with zeros
    return GgufHeader(repo=repo, filename=filename, revision=rev, pinned=pinned,
                      source_url=file_url(settings, repo, rev, filename, "blob"), header=header,
                      data_offset=shape.data_offset, data_size=shape.data_size, file_size=size,
                      bytes_fetched=len(buf), requests=requests, metadata=shape.metadata, tensors=shape.tensors)


@lru_cache(maxsize=64)
def _cached(settings: HubSettings, repo: str, revision: str, filename: str, field: str) -> GgufHeader:
    return _fetch_one(settings, repo, revision, filename, field)


def fetch_gguf_header(repo_id: str, filename: str | None = None, revision: str | None = None, *,
                      settings: HubSettings | None = None, field: str = "gguf") -> list[GgufHeader]:
    """The header of a GGUF file on the Hub (every part's, in order, for a split file); no tensor data.

    `repo_id` is owner/name (with `filename`), or, with `filename` None, a Hub file URL or `owner/name:file`.
    Raises: HubBadInput/HubGated/HubBadFile (422: not a GGUF, truncated, header over 64 MiB),
    HubNotFound/HubDisabled (404), HubUnavailable (503).
    """
    settings = settings or HubSettings.from_env()
    ref = None
    if filename is None:
        ref = repo_id
        repo_id, filename, url_rev = parse_ref(repo_id, settings, field)
        revision = revision or url_rev
    if settings.offline:
        raise HubDisabled(repo_id)
    try:
        repo, rev = validate_repo_id(repo_id, field), validate_revision(revision)
        parts = part_names(_check_gguf_name(filename, field))
    except HubBadInput as exc:
        if ref is None or settings.base_url != HUB_URL:
            raise
        # of HF_FILE_PATTERN's form, but a name the Hub cannot hold (see app/hub/_names.py): nothing to fetch
        raise HubNotFound(ref[:200], f"no such file can exist there ({exc})") from None
    first = _cached(settings, repo, rev, parts[0], field)
    return [first] + [_cached(settings, repo, first.revision, name, field) for name in parts[1:]]


def clear_cache() -> None:
    _cached.cache_clear()
