"""
What must never leak, and where requests may go: one redaction, one origin rule.

`redact_text` is the one redaction of the SDK: exceptions, log lines, journal
rows and CLI output pass what the server or the network said through it before
anyone sees it. It removes the configured key wherever it appears, and any
``Authorization``/``Bearer`` value, whoever's key it is. `origin_of` and
`is_loopback_host` decide where the key may go (the API's own origin only) and
where plain http is tolerated (loopback).
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_PORTS",
    "REDACTED",
    "Origin",
    "is_loopback_host",
    "origin_of",
    "redact_text",
]

#: What a secret is replaced with.
REDACTED = "[redacted]"

# A credential quoted in free text: "Authorization: Bearer x", "bearer x", ...
_CREDENTIAL = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?|bearer\s+)"
    r"(?!\[redacted\]|bearer\s)[^\s\"',)]+"
)


def redact_text(text: str, secret: str | None = None) -> str:
    """
    Return ``text`` with ``secret`` and every quoted credential replaced.

    Example::

        >>> redact_text("invalid key sk-123 (Authorization: Bearer sk-123)", "sk-123")
        'invalid key [redacted] (Authorization: Bearer [redacted])'
    """
    if secret:
        text = text.replace(secret, REDACTED)
    return _CREDENTIAL.sub(rf"\1{REDACTED}", text)


DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """A URL's origin: where a request goes, and so who sees its headers."""

    scheme: str
    host: str
    port: int


def origin_of(url: str) -> Origin | None:
    """
    Return the origin of an absolute http(s) URL, or None if it has none.

    The host is lower-cased and the port filled in from the scheme, so
    ``HTTPS://API.example.com:443/x`` and ``https://api.example.com/y`` share one.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``: traffic that stays local."""
    if host.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
