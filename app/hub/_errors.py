"""Typed errors of the Hugging Face Hub client (app.hub); app/web/handlers.py answers them over HTTP.

    HubError (mixin: every error the Hub client raises on purpose)
    ├── HubDisabled     (UnknownModel)    -> 404  fetching is off (VRAM_OFFLINE=1): an id not in the catalog
    ├── HubNotFound     (UnknownModel)    -> 404  repo, revision or file missing on the Hub
    ├── HubGated        (InvalidRequest)  -> 422  gated or private repo (401/403): the reason and the way in
    ├── HubBadInput     (InvalidRequest)  -> 422  repo id, revision, file name or URL not of the Hub's form
    ├── HubBadFile      (InvalidRequest)  -> 422  malformed JSON, a body over its size cap, not a GGUF,
    │                                             a truncated GGUF header
    └── HubUnavailable  (EstimatorError)  -> 503  network failure, timeout, the Hub's own 5xx/429
        └── HubRefused                    -> 503  a redirect to a host outside the allow-list
"""

from __future__ import annotations

from app.estimator.errors import EstimatorError, InvalidRequest, UnknownModel


class HubError(Exception):
    """Base of every error the Hub client raises on purpose."""


class HubDisabled(HubError, UnknownModel):
    def __init__(self, repo: str) -> None:
        EstimatorError.__init__(
            self, f"unknown model {repo!r}: it is not in the catalog (/api/models) and fetching from the "
            "Hugging Face Hub is turned off on this server (VRAM_OFFLINE)")
        self.slug = repo


class HubNotFound(HubError, UnknownModel):
    def __init__(self, repo: str, what: str) -> None:
        EstimatorError.__init__(self, f"{repo!r} on the Hugging Face Hub: {what}")
        self.slug = repo


class HubGated(HubError, InvalidRequest):
    def __init__(self, field: str, repo: str, status: int, gated: bool) -> None:
        what = "is gated" if gated else "is gated, private or missing (the Hub does not say which)"
        super().__init__(
            field, f"{repo!r} {what} on the Hugging Face Hub (HTTP {status}): accept its license on its Hub "
            "page and set HF_TOKEN on this server, or send its config.json itself")


class HubBadInput(HubError, InvalidRequest):
    """A repo id, revision, file name or URL that is not of the Hub's form."""


class HubBadFile(HubError, InvalidRequest):
    """A file the Hub served that we cannot use; the message names the file and what was wrong."""


class HubUnavailable(HubError, EstimatorError):
    """The Hub could not be reached or did not answer usefully; retrying later may work."""


class HubRefused(HubUnavailable):
    """The Hub redirected to a host outside the allow-list; nothing was requested from that host."""
