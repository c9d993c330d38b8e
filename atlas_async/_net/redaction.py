"""
Log records without secrets, whichever library writes them.

While a client with a key is open, `RedactingFilter` sits on every logger of
``atlas_async`` and of the HTTP stack below it (httpx, httpcore, aiohttp, h2,
hpack, h11, asyncio's own): each record's message, arguments, traceback text and
stack text pass through the one redaction, ``_core.safety.redact_text``, before
any handler sees them. httpcore logs response headers at DEBUG, hpack logs the
headers it encodes, and a server may echo the key anywhere: the filter is what
keeps it out of every log line, at every level.

Theory of operation:

* **Where.** A logger's filters run only for records created on that very
  logger, not for those propagated from its children, so the filter is added
  to each logger under the prefixes of `LOGGER_PREFIXES`: every one that exists
  when a client opens, plus `KNOWN_LOGGERS`, created ahead of the libraries
  that import lazily (httpcore's loggers appear with its first connection).
* **When.** `guard_secret` registers a client's key as live
  (``_core.safety.register_secret``) and installs the filter; leaving it
  unregisters the key and, when no guarded client is left open, takes the
  filter off again, so a process that closed its clients has its logging back
  exactly as it configured it. Several clients with different keys each add
  theirs, and every record is scrubbed of all of them.
* **How.** A record is rewritten only when redaction changes it: ``msg``
  becomes the redacted message and ``args`` empty; a traceback is formatted
  once and the redacted text stored in ``exc_text``, which handlers' formatters
  use instead of formatting ``exc_info`` again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .._core.safety import redact_text, register_secret, unregister_secrets

__all__ = [
    "KNOWN_LOGGERS",
    "LOGGER_PREFIXES",
    "RedactingFilter",
    "guard_secret",
    "install_log_redaction",
    "log_redaction_installed",
    "uninstall_log_redaction",
]

#: Loggers under these names get the filter: ours and the HTTP stack's.
LOGGER_PREFIXES = ("atlas_async", "httpx", "httpcore", "aiohttp", "h2", "h11", "hpack")
#: Loggers created up front: the libraries make them when first imported,
#: which may be after the client opens.
KNOWN_LOGGERS = (
    "atlas_async",
    "atlas_async.journal",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "hpack.hpack",
    "hpack.table",
    "h2.connection",
    "asyncio",  # "Task exception was never retrieved" prints an exception
)


class RedactingFilter(logging.Filter):
    """Rewrites a record so that no live secret nor quoted credential is in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  logging reports a bad format itself
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            clean = redact_text(text)
            if clean != text:
                record.exc_text = clean
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_FILTER = RedactingFilter()
_lock = threading.Lock()
_guards = 0
_installed: list[logging.Logger] = []


def _targets() -> list[logging.Logger]:
    for name in KNOWN_LOGGERS:
        logging.getLogger(name)
    names = list(logging.root.manager.loggerDict)
    found = []
    for name in names:
        logger = logging.root.manager.loggerDict.get(name)
        if isinstance(logger, logging.Logger) and (
            name in KNOWN_LOGGERS
            or any(name == p or name.startswith(p + ".") for p in LOGGER_PREFIXES)
        ):
            found.append(logger)
    return found


def install_log_redaction() -> None:
    """Add the filter to every logger it covers (again: new loggers too)."""
    with _lock:
        _install()


def uninstall_log_redaction() -> None:
    """Take the filter off every logger it was added to."""
    with _lock:
        _uninstall()


def _install() -> None:
    for logger in _targets():
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
            _installed.append(logger)


def _uninstall() -> None:
    for logger in _installed:
        logger.removeFilter(_FILTER)
    _installed.clear()


def log_redaction_installed(name: str) -> bool:
    """True when the logger ``name`` currently carries the filter."""
    return _FILTER in logging.getLogger(name).filters


@contextmanager
def guard_secret(owner: object, secret: str | None) -> Iterator[None]:
    """
    Within the block, ``secret`` is live and every covered log record redacted.

    ``owner`` (held weakly) is whose secret it is: a client, a CLI run; one
    secret per owner. With no secret the block changes nothing.
    """
    global _guards
    if not secret:
        yield
        return
    register_secret(owner, secret)
    with _lock:
        _guards += 1
        _install()
    try:
        yield
    finally:
        unregister_secrets(owner)
        with _lock:
            _guards -= 1
            if _guards == 0:
                _uninstall()
