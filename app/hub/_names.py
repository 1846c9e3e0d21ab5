"""Names the Hub accepts: repo ids, revisions, file paths. Checked before any request (HubBadInput, 422)."""

from __future__ import annotations

import re

from app.hub._errors import HubBadInput

# huggingface_hub.utils.validate_repo_id: [A-Za-z0-9._-], 96 max per part, no "--" or "..", no ".git" end;
# we also require the namespace (owner/name).
_PART = r"(?![.-])[A-Za-z0-9._-]{1,96}(?<![.-])"
REPO_ID = re.compile(rf"{_PART}/{_PART}")
REVISION = re.compile(r"[A-Za-z0-9._/-]{1,255}")
COMMIT = re.compile(r"[0-9a-f]{40}")
FILENAME = re.compile(r"[A-Za-z0-9._+@()\[\] /-]{1,512}")

# A GGUF on the Hub as `hf` takes it, in the characters above (a URL's revision and path may also carry
# %-escapes, as the Hub writes refs/pr/1: refs%2Fpr%2F1; no query or fragment): the whole form is this
# pattern, stated as is in /openapi.json (JSON Schema regex: no lookarounds), and a reference outside it is
# a 422. One inside it that breaks a rule the pattern does not state (a part over 96 characters, '..' or
# '--', a '..' path segment, an escape that decodes outside the characters above) names nothing the Hub can
# hold: a 404, fetched never.
_NAME = r"[A-Za-z0-9._-]+"
_ESCAPED = r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})+"
_GGUF_PATH = r"[A-Za-z0-9._+@()\[\] /-]*\.gguf"
_ESCAPED_PATH = r"(?:[A-Za-z0-9._+@()\[\] /-]|%[0-9A-Fa-f]{2})*\.gguf"
HF_FILE_URL_PATH = rf"/{_NAME}/{_NAME}/(?:resolve|blob)/{_ESCAPED}/{_ESCAPED_PATH}"
HF_FILE_PATTERN = (rf"^(?:https://(?:huggingface\.co|www\.huggingface\.co|hf\.co){HF_FILE_URL_PATH}"
                   rf"|{_NAME}/{_NAME}:{_GGUF_PATH})$")


def validate_repo_id(repo: str, field: str = "model") -> str:
    """owner/name as the Hub allows it; HubBadInput (422) otherwise."""
    if not isinstance(repo, str) or not REPO_ID.fullmatch(repo) or ".." in repo or "--" in repo \
            or repo.endswith(".git"):
        raise HubBadInput(field, f"{field} {str(repo)[:200]!r} is not a Hugging Face repo id: owner/name, each "
                                 "1-96 of A-Z a-z 0-9 . _ -, not starting or ending with . or -, no '..' or '--'")
    return repo


def validate_revision(revision: str | None, field: str = "revision") -> str:
    """A branch, tag or commit sha; `main` when None."""
    rev = "main" if revision is None else revision
    if not REVISION.fullmatch(rev) or ".." in rev or rev.startswith("/") or rev.endswith("/") or "//" in rev:
        raise HubBadInput(field, f"{field} {str(rev)[:200]!r} is not a branch, tag or commit: up to 255 of "
                                 "A-Z a-z 0-9 . _ - /, no '..'")
    return rev


def validate_filename(name: str, field: str = "file") -> str:
    """A path inside a repo: no '..' segment, no leading '/'."""
    parts = name.split("/") if isinstance(name, str) else [""]
    if not FILENAME.fullmatch(str(name)) or any(p in {"", ".", ".."} for p in parts):
        raise HubBadInput(field, f"{field} {str(name)[:200]!r} is not a file path inside a Hub repo")
    return name
