"""
`ClientConfig`: everything `AtlasClient` needs to know before it sends a byte,
resolved once from the constructor's arguments and the environment.

Theory of operation:

* `resolve_config` is the only place that reads settings. It takes the
  environment as a plain mapping (the client passes ``os.environ``), so this
  module stays pure: no I/O, no httpx, no clock, no global ``random``.
* Every check that can fail on the user's input fails here, with a
  `ConfigurationError` that says what to change. Later layers trust the config.
* The API origin (scheme, host, port) is derived here, once. The HTTP layer sends
  the ``Authorization`` header only to a URL with exactly this origin, so the key
  never reaches an output host, a CDN, or a redirect target.
* Plain ``http://`` is refused unless the host is a loopback address (the local
  emulator) or the caller opted in with ``allow_insecure_http=True``: a bearer key
  in clear text is a key given away.
* A missing API key is *not* an error here: ``list_models`` needs no key. The
  HTTP layer raises `ConfigurationError` on the first call that needs one.
* Nothing from the wire is unbounded: an answer is read up to
  ``max_answer_bytes`` decoded bytes (`DEFAULT_MAX_ANSWER_BYTES`), and a
  request ends by ``Timeouts.total`` (`DEFAULT_TOTAL_TIMEOUT`) whatever its
  phases' timeouts say (docs/wire.md, "Caps and deadlines").
* Error messages never echo the key, and never echo a URL's userinfo or query
  (someone may have pasted a key there).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import attrs

from .errors import ConfigurationError
from .models import Kind
from .retry import BackoffPolicy, Retry
from .safety import DEFAULT_PORTS, Origin, is_loopback_host, origin_of
from .validate import check_real

if TYPE_CHECKING:
    pass

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_BATCH_WORKERS",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUTS",
    "DEFAULT_TOTAL_TIMEOUT",
    "ClientConfig",
    "Origin",
    "DEFAULT_PREDICTION_TIMEOUTS",
    "HTTP_BACKOFF",
    "http_retry",
    "TimeoutArg",
    "Timeouts",
    "is_loopback_host",
    "origin_of",
    "resolve_config",
]

API_KEY_ENV = "ATLASCLOUD_API_KEY"
BASE_URL_ENV = "ATLASCLOUD_BASE_URL"
DEFAULT_BASE_URL = "https://api.atlascloud.ai/api/v1"

# 16-32 requests in flight is the measured sweet spot for httpx (docs/performance.md,
# "What the HTTP layer costs"); the owned connection pool is sized to match, so
# httpcore never queues.
DEFAULT_MAX_CONCURRENT_REQUESTS = 16
# Predictions submitted and not yet terminal before further submits wait: none
# by default. The account's flow control (its rate, each model's window) already
# bounds what the server takes, and a pending prediction costs about 1.5 KB of
# the client's memory (docs/performance.md): 100,000 in flight is ~150 MB.
DEFAULT_MAX_IN_FLIGHT: int | None = None
#: Batch workers when the client sets no ``max_in_flight``: items in progress
#: at once, each a task and a prediction (the rest wait in the journal).
DEFAULT_BATCH_WORKERS = 1000
DEFAULT_MAX_RETRIES = 4
#: The most an API answer may weigh once decoded (gzip, deflate, br undone):
#: a poll or submit answer is a few KB; the model catalog a few hundred; room is
#: left for ``enable_base64_output`` images inside a poll answer.
DEFAULT_MAX_ANSWER_BYTES = 8 * 1024 * 1024
#: The longest one request may take, connect to last byte: long enough for a
#: sync-mode submit or a large upload on a slow link (the vendor's own client
#: gives uploads 300 s), short enough that no server can hold a request forever.
DEFAULT_TOTAL_TIMEOUT = 300.0


@attrs.frozen(kw_only=True)
class Timeouts:
    """
    Per-request timeouts in seconds; None means no limit for that phase.

    The same four phases as ``httpx.Timeout``, each bounding one wait (a read
    timeout is the longest pause *between* two pieces of the answer). ``pool``
    defaults to None: the SDK's own limiter keeps requests below the pool size,
    and a pool timeout only fires when requests queue inside httpx
    (docs/performance.md, "What the HTTP layer costs").

    ``total`` bounds the whole of each attempt, from the moment it leaves the
    client's queue to the answer's last byte (connect, send and the whole body):
    a server trickling one byte a second trips no phase timeout, and this one
    ends it. No retry of a request starts once ``total`` seconds have passed
    since the request began, and a ``Retry-After`` that would end past that is
    not waited for. A submit stopped by it after it was sent is
    `SubmissionUnknownError`. None: no overall limit.

    Example::

        AtlasClient(timeout=Timeouts(connect=5, read=120, write=60, total=600))
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    write: float | None = 60.0
    pool: float | None = None
    total: float | None = DEFAULT_TOTAL_TIMEOUT

    def __attrs_post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            # A finite number > 0 (ArgumentTypeError / InvalidArgumentError,
            # both ConfigurationError); None is how "no limit" is spelled.
            value = getattr(self, name)
            if value is not None:
                check_real(value, f"timeout {name}", above=0.0)


DEFAULT_TIMEOUTS = Timeouts()


class _TimeoutLike(Protocol):
    # Structural match for httpx.Timeout without importing httpx here.
    @property
    def connect(self) -> float | None: ...
    @property
    def read(self) -> float | None: ...
    @property
    def write(self) -> float | None: ...
    @property
    def pool(self) -> float | None: ...


TimeoutArg = float | timedelta | Timeouts | _TimeoutLike | None
"""What ``AtlasClient(timeout=...)`` accepts."""


#: The deadline a prediction gets when the call names none, per kind, in seconds.
#: Generous: typical videos take 1-3 minutes, but heavy 1080p ones have been seen
#: past 15; a deadline is a safety net, not a guess.
DEFAULT_PREDICTION_TIMEOUTS: Mapping[Kind, float] = {
    Kind.IMAGE: 600.0,
    Kind.VIDEO: 1800.0,
    Kind.AUDIO: 900.0,
}


#: How the HTTP layer spaces its retries of one request: 0.5 s, 1 s, 2 s, ...
#: up to 8 s, each minus up to half at random; a ``Retry-After`` up to 60 s is
#: a floor.
HTTP_BACKOFF = BackoffPolicy(
    initial=0.5, factor=2.0, cap=8.0, jitter=0.5, retry_after_cap=60.0
)


def http_retry(max_retries: int = DEFAULT_MAX_RETRIES) -> Retry:
    """
    The retry of one HTTP request: ``max_retries`` retries after the first try.

    Raises:
        ConfigurationError: ``max_retries`` is not an integer >= 0.
    """
    if (
        not isinstance(max_retries, int)
        or isinstance(max_retries, bool)
        or max_retries < 0
    ):
        raise ConfigurationError(f"max_retries={max_retries!r} must be an integer >= 0")
    return Retry(attempts=max_retries + 1, backoff=HTTP_BACKOFF)


@attrs.frozen(kw_only=True)
class ClientConfig:
    """
    The resolved, validated settings of one `AtlasClient`.

    Build it with `resolve_config`. ``api_key`` never appears in the repr.

    Attributes:
        api_key: the bearer key, or None when none was given (only ``list_models``
            works then).
        base_url: the API base without a trailing slash, e.g.
            ``https://api.atlascloud.ai/api/v1``.
        timeout: per-request timeouts; None keeps an injected ``http_client``'s
            own timeouts (a client the SDK builds uses `DEFAULT_TIMEOUTS`).
        retry: how the HTTP layer spaces retries.
        allow_insecure_http: send the key over plain http to a non-loopback host.
        max_in_flight: predictions submitted and not yet terminal (None: no
            cap but the account's flow control).
        max_concurrent_requests: HTTP requests in flight at once.
        requests_per_second: a request budget (None: unlimited, but slows on 429).
        poll: the poll policy option, passed through to the scheduler as given.
        max_answer_bytes: the most an API answer may weigh, decoded.
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout: Timeouts | None = None
    retry: Retry = attrs.field(factory=http_retry)
    allow_insecure_http: bool = False
    max_in_flight: int | None = DEFAULT_MAX_IN_FLIGHT
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    requests_per_second: float | None = None
    poll: object = attrs.field(default=None, eq=False)
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES

    @property
    def total_timeout(self) -> float | None:
        """The overall limit of one request (`Timeouts.total`), also for an
        injected ``http_client`` whose phase timeouts are kept."""
        return (self.timeout or DEFAULT_TIMEOUTS).total

    @property
    def origin(self) -> Origin:
        """The API origin; the only one that ever receives the key."""
        origin = origin_of(self.base_url)
        if origin is None:  # resolve_config validated base_url
            raise AssertionError("unreachable")
        return origin


def resolve_config(
    api_key: str | None = None,
    base_url: str | None = None,
    *,
    env: Mapping[str, str],
    timeout: TimeoutArg = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    allow_insecure_http: bool = False,
    max_in_flight: int | None = DEFAULT_MAX_IN_FLIGHT,
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    requests_per_second: float | None = None,
    poll: object = None,
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
) -> ClientConfig:
    """
    Resolve and validate the client's settings from arguments and ``env``.

    Arguments win over the environment: ``api_key`` falls back to
    ``ATLASCLOUD_API_KEY``, ``base_url`` to ``ATLASCLOUD_BASE_URL``, then to
    `DEFAULT_BASE_URL`.

    Example::

        config = resolve_config(env={"ATLASCLOUD_API_KEY": "sk-..."})
        config.origin  # Origin(scheme='https', host='api.atlascloud.ai', port=443)

    Raises:
        ConfigurationError: for a malformed key or base URL, plain http to a
            non-loopback host without ``allow_insecure_http``, or an out-of-range
            option.
    """
    return ClientConfig(
        api_key=_resolve_key(api_key, env),
        base_url=_resolve_base_url(base_url, env, allow_insecure_http),
        timeout=_resolve_timeout(timeout),
        retry=http_retry(max_retries),
        allow_insecure_http=allow_insecure_http,
        max_in_flight=(
            None
            if max_in_flight is None
            else _positive_int("max_in_flight", max_in_flight)
        ),
        max_concurrent_requests=_positive_int(
            "max_concurrent_requests", max_concurrent_requests
        ),
        requests_per_second=_positive_rate(requests_per_second),
        poll=poll,
        max_answer_bytes=_positive_int("max_answer_bytes", max_answer_bytes),
    )


def _resolve_key(api_key: str | None, env: Mapping[str, str]) -> str | None:
    if api_key is None:
        # An empty variable (``ATLASCLOUD_API_KEY=``) means "not set".
        api_key = env.get(API_KEY_ENV, "").strip() or None
        source = API_KEY_ENV
        if api_key is None:
            return None
    else:
        if not isinstance(api_key, str):
            raise ConfigurationError(
                f"api_key must be a str, not {type(api_key).__name__}"
            )
        source = "api_key"
        # Keys copied from files often carry a trailing newline.
        api_key = api_key.strip()
        if not api_key:
            raise ConfigurationError(
                "api_key is empty: pass the key from your Atlas Cloud console, or"
                f" leave it out and set {API_KEY_ENV}"
            )
    # A key with spaces or control characters would make an invalid header, and
    # httpx's error for that quotes the header value: refuse it here, unquoted.
    if not all("!" <= ch <= "~" for ch in api_key):
        raise ConfigurationError(
            f"the API key from {source} contains whitespace or non-ASCII"
            " characters; copy it again from the Atlas Cloud console"
        )
    return api_key


def _resolve_base_url(
    base_url: str | None, env: Mapping[str, str], allow_insecure_http: bool
) -> str:
    if base_url is None:
        base_url = env.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
        source = BASE_URL_ENV if BASE_URL_ENV in env else "the default"
    else:
        source = "base_url"
    if not isinstance(base_url, str):
        raise ConfigurationError(
            f"base_url must be a str, not {type(base_url).__name__}"
        )
    try:
        parts = urlsplit(base_url.strip())
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            f"{source} is not a valid URL (bad host or port)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigurationError(
            f"{source} must start with https:// (got scheme {parts.scheme!r}),"
            f" e.g. {DEFAULT_BASE_URL}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"{source} must not contain credentials (user:password@); pass the"
            f" key as api_key or set {API_KEY_ENV}"
        )
    if parts.query or parts.fragment or base_url.rstrip().endswith(("?", "#")):
        raise ConfigurationError(f"{source} must not have a query string or fragment")
    host = parts.hostname
    if not host:
        raise ConfigurationError(f"{source} has no host, e.g. {DEFAULT_BASE_URL}")
    if scheme == "http" and not allow_insecure_http and not is_loopback_host(host):
        raise ConfigurationError(
            f"{source} uses plain http:// to {host}, which would send the API key"
            " unencrypted; use https://, or pass allow_insecure_http=True if the"
            " network path is trusted (loopback hosts are always allowed)"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _resolve_timeout(timeout: TimeoutArg) -> Timeouts | None:
    if timeout is None or isinstance(timeout, Timeouts):
        return timeout
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool):
        raise ConfigurationError("timeout must be seconds, a timedelta or Timeouts")
    if isinstance(timeout, (int, float)):
        # One number bounds each phase, like httpx; the pool wait stays unbounded
        # because our limiter, not httpx's pool, is where requests queue. The
        # total is never below one phase: timeout=900 asks for long requests.
        seconds = float(timeout)
        total = max(seconds, DEFAULT_TOTAL_TIMEOUT) if seconds > 0 else seconds
        return Timeouts(
            connect=seconds, read=seconds, write=seconds, pool=None, total=total
        )
    if all(hasattr(timeout, name) for name in ("connect", "read", "write", "pool")):
        return Timeouts(
            connect=timeout.connect,
            read=timeout.read,
            write=timeout.write,
            pool=timeout.pool,
        )
    raise ConfigurationError(
        "timeout must be seconds, a timedelta, atlas_async Timeouts or httpx.Timeout,"
        f" not {type(timeout).__name__}"
    )


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name}={value!r} must be an integer >= 1")
    return value


def _positive_rate(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(
            f"requests_per_second={value!r} must be a positive number or None"
        )
    return float(value)
