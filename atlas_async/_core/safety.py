"""
What must never leak, and where requests may go: one redaction, one origin rule.

`redact_text` is the one redaction of the SDK: exceptions, log lines, journal
rows and CLI output pass what the server or the network said through it before
anyone sees it. It removes every *live* secret wherever it appears (the keys of
the clients open in this process, see below), the ``secret`` it is given, and
any ``Authorization``/``Bearer`` value, whoever's key it is. `redact_value`
applies it to everything inside a value: mappings, lists, tuples, bytes and
attrs instances (a `Prediction` held by an error). `origin_of` and
`is_loopback_host` decide where the key may go (the API's own origin only) and
where plain http is tolerated (loopback).

Live secrets
------------
A client registers its key when it opens (`register_secret`) and removes it
when it closes (`unregister_secrets`); the registry holds the client weakly, so
a client dropped without closing takes its key out with it. Several clients
with different keys in one process each add theirs, and closing one leaves the
others' in place. Because the registry is process-wide, code that has no client
at hand (an error built deep inside, a journal row, a log filter) still removes
every key in use: ``redact_text(text)`` with no second argument is enough.

Each key is searched for as it is and in the forms it takes when something
quotes it: JSON-escaped, in a ``bytes`` repr (httpcore logs headers so), and
percent-encoded. Secrets shorter than `MIN_SECRET_LENGTH` are not registered:
they would match ordinary words (real keys are far longer); an explicit
``secret`` argument is always removed, whatever its length.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import attrs

__all__ = [
    "DEFAULT_PORTS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Origin",
    "is_loopback_host",
    "live_secrets",
    "origin_of",
    "redact_text",
    "redact_value",
    "register_secret",
    "unregister_secrets",
]

#: What a secret is replaced with.
REDACTED = "[redacted]"

#: Registered secrets shorter than this are ignored (they would match words).
MIN_SECRET_LENGTH = 8

# A credential quoted in free text: "Authorization: Bearer x", "bearer x", ...
_CREDENTIAL = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?|bearer\s+)"
    r"(?!\[redacted\]|bearer\s)[^\s\"',)]+"
)
# Past this depth a value is not walked but replaced: a pathological body must
# not turn redaction into a RecursionError.
_MAX_DEPTH = 100
_TOO_DEEP = f"{REDACTED} (nested deeper than {_MAX_DEPTH} levels)"


def _forms(secret: str) -> set[str]:
    """The texts ``secret`` becomes when something quotes it."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        repr(secret.encode("utf-8", "backslashreplace"))[2:-1],
        quote(secret, safe=""),
    }
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class _Registry:
    """The live secrets, per owner; readers see an immutable snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[int, tuple[weakref.ref[Any], frozenset[str]]] = {}
        self._dead: list[weakref.ref[Any]] = []
        self.forms: tuple[str, ...] = ()
        self.encoded: tuple[bytes, ...] = ()

    def add(self, owner: object, secret: str) -> None:
        with self._lock:
            key = id(owner)
            entry = self._owners.get(key)
            known = entry[1] if entry is not None and entry[0]() is owner else ()
            ref = weakref.ref(owner, self._died)
            self._owners[key] = (ref, frozenset({*known, secret}))
            self._rebuild()

    def remove(self, owner: object) -> None:
        with self._lock:
            entry = self._owners.get(id(owner))
            if entry is not None and entry[0]() is owner:
                del self._owners[id(owner)]
            self._rebuild()

    def _died(self, ref: weakref.ref[Any]) -> None:
        # A weakref callback may run during any allocation, this thread's
        # critical section included: never wait for the lock here. If it is
        # taken, the next add or remove drops the owner.
        self._dead.append(ref)
        if self._lock.acquire(blocking=False):
            try:
                self._rebuild()
            finally:
                self._lock.release()

    def _rebuild(self) -> None:
        dead, self._dead = self._dead, []
        for key, (ref, _) in list(self._owners.items()):
            if ref() is None or ref in dead:
                del self._owners[key]
        forms = {
            form
            for _, secrets in self._owners.values()
            for secret in secrets
            for form in _forms(secret)
        }
        # Longest first: a key that contains another key goes out whole.
        self.forms = tuple(sorted(forms, key=len, reverse=True))
        self.encoded = tuple(
            form.encode("utf-8", "backslashreplace") for form in self.forms
        )


_REGISTRY = _Registry()


def register_secret(owner: object, secret: str | None) -> None:
    """
    Make ``secret`` live while ``owner`` lives, until `unregister_secrets`.

    ``owner`` is held weakly (it must support weak references): when it is
    garbage-collected its secrets stop being live. None, an empty or a short
    secret (below `MIN_SECRET_LENGTH`) registers nothing.
    """
    if secret and len(secret) >= MIN_SECRET_LENGTH:
        _REGISTRY.add(owner, secret)


def unregister_secrets(owner: object) -> None:
    """Forget every secret ``owner`` registered; other owners' stay live."""
    _REGISTRY.remove(owner)


def live_secrets() -> tuple[str, ...]:
    """Every text `redact_text` removes besides credentials, longest first."""
    return _REGISTRY.forms


def redact_text(text: str, secret: str | None = None) -> str:
    """
    Return ``text`` without ``secret``, any live secret, or quoted credentials.

    Example::

        >>> redact_text("invalid key sk-123 (Authorization: Bearer sk-123)", "sk-123")
        'invalid key [redacted] (Authorization: Bearer [redacted])'
    """
    if secret:
        text = text.replace(secret, REDACTED)
    for form in _REGISTRY.forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return _CREDENTIAL.sub(rf"\1{REDACTED}", text)


def redact_value(value: Any, secret: str | None = None) -> Any:
    """
    Return ``value`` with `redact_text` applied to every string inside it.

    Walks mappings (keys too), lists, tuples, sets, ``bytes`` and attrs
    instances; other objects are returned as they are. The same object comes
    back when nothing needed removing, so a clean value keeps its identity
    and type. A container nested deeper than 100 levels is replaced by a
    ``[redacted]`` note rather than walked.
    """
    return _redact(value, secret, 0)


def _redact(value: Any, secret: str | None, depth: int) -> Any:
    if isinstance(value, str):
        clean = redact_text(value, secret)
        # A str subclass (a status enum) comes back as itself when clean.
        return value if clean == value else clean
    if isinstance(value, (bytes, bytearray)):
        return _redact_bytes(value, secret)
    if depth > _MAX_DEPTH and isinstance(value, (Mapping, list, tuple, set)):
        return _TOO_DEEP
    depth += 1
    if isinstance(value, Mapping):
        items = [
            (_redact(k, secret, depth), _redact(v, secret, depth))
            for k, v in value.items()
        ]
        if all(
            a is k and b is v
            for (a, b), (k, v) in zip(items, value.items(), strict=True)
        ):
            return value
        rebuild: Any = type(value)
        try:
            return rebuild(items)
        except Exception:  # noqa: BLE001  a mapping type we cannot rebuild
            return dict(items)
    if isinstance(value, (list, tuple, set, frozenset)):
        redacted = [_redact(item, secret, depth) for item in value]
        if all(a is b for a, b in zip(redacted, value, strict=True)):
            return value
        if isinstance(value, (set, frozenset)):
            return (
                frozenset(redacted) if isinstance(value, frozenset) else set(redacted)
            )
        return redacted if isinstance(value, list) else tuple(redacted)
    if attrs.has(type(value)):
        changes = {}
        for field in attrs.fields(type(value)):
            if not field.init:
                continue
            old = getattr(value, field.name)
            new = _redact(old, secret, depth)
            if new is not old:
                changes[field.alias or field.name] = new
        return attrs.evolve(value, **changes) if changes else value
    return value


def _redact_bytes(value: bytes | bytearray, secret: str | None) -> bytes | bytearray:
    targets = list(_REGISTRY.encoded)
    if secret:
        targets.append(secret.encode("utf-8", "backslashreplace"))
    out = bytes(value)
    for target in targets:
        if target and target in out:
            out = out.replace(target, REDACTED.encode())
    return value if out == value else out


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
