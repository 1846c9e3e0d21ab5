"""Remove what identifies a person or a machine before any text of a log is kept or echoed back.

Paths keep only their last component (a model file name); syslog/journald prefixes (which carry the
host name) are dropped; IPv4/IPv6 addresses, e-mail-like user@host and ~user become placeholders.
"""

from __future__ import annotations

import re

_JOURNAL = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [\w.\-/]+(?:\[\d+\])?: ")
_PATH = re.compile(r"(?:(?<![\w.:/])|(?<=file://))(?:[A-Za-z]:\\|\\\\|/)(?:[^\s'\"(),:;\\/]++[\\/])+(?=[^\s'\"(),;\\/])")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# an IPv6 address has 8 groups, or fewer with "::"; "16:39:28" (a log's clock) is neither
_IPV6 = re.compile(r"(?<![\w:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}"
                   r"|(?=[0-9a-fA-F:]*::)(?:[0-9a-fA-F]{1,4})?(?::[0-9a-fA-F]{0,4}){2,7})(?![\w:])")
# starts only where a run of name characters starts (`\b` alone let it retry from inside each run: quadratic)
_USER_AT = re.compile(r"(?<![\w.\-])([.\-]*+)\b[\w.\-]++@[\w\-]+(?:\.[\w\-]+)*\b")
_TILDE = re.compile(r"(?<![\w.])~[A-Za-z][\w.\-]*")


def strip_prefix(line: str) -> str:
    """Drop a journald/syslog prefix ("Jan 17 16:39:28 host ollama[123]: ")."""
    return _JOURNAL.sub("", line, count=1)


def scrub(text: str) -> str:
    """The text with paths cut to their last part and host names, addresses and user names removed."""
    text = _PATH.sub("…/", text)
    text = _IPV4.sub("<ip>", text)
    text = _IPV6.sub("<ip>", text)
    text = _USER_AT.sub(r"\1<user>@<host>", text)
    return _TILDE.sub("~<user>", text)
