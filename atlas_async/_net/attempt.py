"""
How one HTTP attempt ends: a success, a failure worth retrying, or a final error.
Part of `_http`, which re-exports `RetryMode`; kept apart so each module stays
readable.

Theory of operation:

* `error_for` turns an `Answer` (decoded once) into the `AtlasError` it amounts
  to (errors inside HTTP 200 count), or None. A poll's or submit's 5xx whose
  body carries a terminal verdict is no error: it is the prediction's end.
  Redirects are errors: following one would carry the key off the API origin.
* `transport_failure` turns an httpx exception (or anything else an HTTP library
  raised) into a `TransportError`, or into `SubmissionUnknownError` for a submit
  that may have reached the server.
* A submit that was sent and whose answer is unusable is unknown, never a plain
  failure: `submit_failure` turns a 5xx other than 503 (the server may have
  created the prediction before failing), an answer past the cap or in a broken
  encoding, and the overall deadline into `SubmissionUnknownError`.
* A failure the call's `RetryMode` allows to retry comes wrapped in
  ``_net.retrying.RetryableError``; the one retry loop unwraps it once the
  retries are spent.
* `redact` scrubs the key from errors built from what the server said: a
  misbehaving gateway may echo the Authorization header in its error text.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from .._core.clock import Clock
from .._core.errors import (
    APIError,
    AtlasError,
    RateLimitError,
    SubmissionUnknownError,
    TransportError,
    UnexpectedResponseError,
)
from .._core.models import Kind
from .._core.safety import redact_text, redact_value
from .._core.windows import RequestKind
from .._wire.answer import Answer, BodyRefusedError
from .._wire.errors import api_error
from .exchange import RawAnswer
from .gate import Admission
from .retrying import RetryableError
from .wheel import Expired

logger = logging.getLogger("atlas_async")

__all__ = [
    "Call",
    "Outcomes",
    "RetryMode",
    "deadline_failure",
    "error_for",
    "redact",
    "redirect_failure",
    "refused_failure",
    "retries_status",
    "short",
    "submit_failure",
    "transport_failure",
    "unusable_submit",
]

_E = TypeVar("_E", bound="BaseException | None")
_A = TypeVar("_A", bound=AtlasError)

# Failures that prove the request never left: no connection was made, or no
# pooled connection was free to carry it. Only these may re-send a submit.
_NEVER_SENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Worth another try for an idempotent request: the network or the peer failed.
_TRANSIENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
_IDEMPOTENT_RETRY_STATUSES = frozenset({408, 429, *range(500, 600)})
# The server refused a submit without acting on it (503: temporarily
# unavailable). A 500 may have half-created it: never retried, unknown. A 429 is not
# retried here either: it goes up to the scheduler, which waits for the model's
# window or the account's rate and tries again until the prediction's deadline.
_SUBMIT_RETRY_STATUSES = frozenset({503})


class RetryMode(enum.Enum):
    """Which failures `ApiSession.request` may retry on its own."""

    NONE = "none"
    """No retries: the caller (the poll scheduler) decides when to try again."""
    IDEMPOTENT = "idempotent"
    """Retry 408, 429, 5xx and network failures with jittered backoff."""
    SUBMIT = "submit"
    """Retry only never-sent failures and 429/503 refusals; never re-send."""


def retries_status(mode: RetryMode, status: int) -> bool:
    """True when ``mode`` allows retrying an error answer with this status."""
    if mode is RetryMode.IDEMPOTENT:
        return status in _IDEMPOTENT_RETRY_STATUSES
    return mode is RetryMode.SUBMIT and status in _SUBMIT_RETRY_STATUSES


class Call(NamedTuple):
    """
    One logical request, the same for each of its attempts.

    A named tuple, not an attrs class: one is built per request, polls
    included, and a tuple costs a fifth as much to build.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    retry: RetryMode
    prediction_id: str | None
    kind: Kind | None
    model: str | None
    purpose: RequestKind = RequestKind.OTHER
    #: The fingerprint of the answer the caller last read (polls; 0: none).
    seen: int = 0

    @property
    def label(self) -> str:
        # Path only: a query string may carry a signed token.
        about = f" (prediction {self.prediction_id})" if self.prediction_id else ""
        return f"{self.method} {self.path}{about}"

    @property
    def path(self) -> str:
        """The URL's path, without the query (which may carry a signed token)."""
        return urlsplit(self.url).path

    @property
    def public_url(self) -> str:
        """The URL without its query and fragment."""
        return urlunsplit(urlsplit(self.url)._replace(query="", fragment=""))

    @property
    def extra(self) -> dict[str, str]:
        return {"prediction_id": self.prediction_id} if self.prediction_id else {}

    def __repr__(self) -> str:
        # Never the headers (the key) nor the body.
        return f"Call({self.method} {self.path}, retry={self.retry.name})"


# Calls whose 5xx answers may carry a prediction's final verdict (W1-W3).
_VERDICT_PURPOSES = frozenset({RequestKind.POLL, RequestKind.SUBMIT})


def error_for(answer: Answer, call: Call, *, now: float) -> AtlasError | None:
    """
    The error this answer amounts to (errors inside a 2xx too), or None.

    ``now`` is wall time (Unix seconds), for an HTTP-date ``Retry-After``.
    """
    status = answer.status_code
    if 300 <= status < 400:
        return redirect_failure(call, status)
    return api_error(
        status,
        answer.headers,
        answer.decoded,
        now=now,
        prediction_id=call.prediction_id,
        verdicts=call.purpose in _VERDICT_PURPOSES,
    )


def redirect_failure(call: Call, status: int | None) -> UnexpectedResponseError:
    """
    A redirect from the API, whatever its ``Location`` (never shown: it may
    carry credentials). ``status`` is None when the HTTP library refused the
    ``Location`` before the answer reached us.
    """
    # Following would carry the key to wherever Location points; the API
    # itself never redirects, so this is a misconfigured base_url or proxy.
    shown = f"{status} (a redirect)" if status is not None else "a redirect"
    return UnexpectedResponseError(
        f"{call.method} {call.path} answered {shown};"
        " atlas_async does not follow redirects from the API, so that the"
        " Authorization header never leaves its origin: check base_url",
        status_code=status,
        prediction_id=call.prediction_id,
    )


def refused_failure(
    refused: BodyRefusedError, call: Call, status: int | None
) -> UnexpectedResponseError | SubmissionUnknownError:
    """An answer whose body broke the rules (past the cap, a broken encoding)."""
    hint = (
        ": pass AtlasClient(max_answer_bytes=...) to allow more"
        if refused.too_large
        else ""
    )
    error = UnexpectedResponseError(
        f"{call.method} {call.path} answered {status}, and {refused.reason}"
        f"{hint}; the rest was not read",
        status_code=status,
        prediction_id=call.prediction_id,
    )
    error.__cause__ = refused
    return submit_failure(error, call)


def deadline_failure(
    call: Call, total: float
) -> TransportError | SubmissionUnknownError:
    """The overall deadline (`Timeouts.total`) passed before the answer ended."""
    error = TransportError(
        f"{call.method} {call.public_url} did not finish within its total timeout"
        f" of {total:g}s (connect, send and the whole answer): the server is"
        " too slow or trickling its answer",
        method=call.method,
        url=call.public_url,
        prediction_id=call.prediction_id,
    )
    error.__cause__ = TimeoutError(f"total timeout of {total:g}s")
    return submit_failure(error, call)


def submit_failure(error: _A, call: Call) -> _A | SubmissionUnknownError:
    """
    ``error`` as the caller should see it: for a sent submit whose answer is
    unusable, `SubmissionUnknownError` (chained from ``error``); else unchanged.

    Unusable: a 5xx other than 503 (the server, or a gateway in front of it, may
    have created the prediction before failing), an `UnexpectedResponseError`
    other than a redirect, and a `TransportError` (a deadline). A 4xx, a 503
    and a 429 are refusals: nothing was created.
    """
    if call.retry is not RetryMode.SUBMIT or isinstance(error, SubmissionUnknownError):
        return error
    if isinstance(error, APIError):
        status = error.status_code
        if status is None or not 500 <= status <= 599 or status == 503:
            return error
    elif isinstance(error, UnexpectedResponseError):
        if error.status_code is not None and 300 <= error.status_code < 400:
            return error  # a redirect: nothing at this URL took the request
    elif not isinstance(error, TransportError):
        return error
    return unusable_submit(
        error, method=call.method, url=call.public_url, kind=call.kind, model=call.model
    )


def unusable_submit(
    error: Exception,
    *,
    method: str,
    url: str,
    kind: Kind | None,
    model: str | None,
) -> SubmissionUnknownError:
    """
    The `SubmissionUnknownError` of a submit that was sent and whose answer
    cannot be used (``error`` says why, and is its cause).
    """
    why = error.message if isinstance(error, AtlasError) else str(error)
    detail = f"{type(error).__name__}: {why}" if why else type(error).__name__
    unknown = SubmissionUnknownError(
        f"{method} {url} was sent and its answer is unusable ({detail}); the"
        " prediction may exist and be billed, so it was not re-sent: check the"
        " Atlas Cloud console before submitting again",
        method=method,
        url=url,
        kind=kind,
        model=model,
    )
    unknown.__cause__ = error
    return unknown


def transport_failure(exc: Exception, call: Call) -> Exception:
    """
    What a failed exchange means for ``call``: a `SubmissionUnknownError` for a
    submit that may have reached the server, else a `TransportError` (wrapped
    in `RetryableError` when the call's mode allows another try).

    ``exc`` is an httpx exception, or anything else an HTTP library raised (an
    HTTP library's own bug is still no answer): only httpx's connect failures
    prove a request never left.
    """
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    method, url = call.method, call.public_url
    if call.retry is RetryMode.SUBMIT and not isinstance(exc, _NEVER_SENT):
        # Anything not provably unsent may have reached the server: report it and
        # never re-send (docs: "blindly retrying creates (and bills) a second task").
        unknown = SubmissionUnknownError(
            f"{method} {url} was sent and no answer came ({detail}); the"
            " prediction may exist and be billed, so it was not re-sent: check"
            " the Atlas Cloud console before submitting again",
            method=method,
            url=url,
            kind=call.kind,
            model=call.model,
        )
        unknown.__cause__ = exc
        return unknown
    error = TransportError(
        f"{method} {url} got no usable answer ({detail})",
        method=method,
        url=url,
        prediction_id=call.prediction_id,
    )
    error.__cause__ = exc
    # A submit that got here was provably never sent: safe to send again.
    if call.retry is RetryMode.SUBMIT or (
        call.retry is RetryMode.IDEMPOTENT and isinstance(exc, _TRANSIENT)
    ):
        return RetryableError(error, None)
    return error


def redact(error: _E, secret: str | None) -> _E:
    """
    Remove the key from an error built from what the server or network said.

    A misbehaving gateway may echo the Authorization header back in its error
    text ("invalid key sk-..."); that text must not carry the key into logs or
    tracebacks. Uses the one redaction, `redact_text`.
    """
    if error is None:
        return error
    target = error.error if isinstance(error, RetryableError) else error
    if isinstance(target, AtlasError):
        target.message = redact_text(target.message, secret)
        target.args = (target.message,)
        if hasattr(target, "body"):
            target.body = redact_value(target.body, secret)
    return error


def short(error: Exception) -> str:
    if isinstance(error, APIError) and error.status_code is not None:
        return f"{error.status_code} {type(error).__name__}"
    cause = error.__cause__
    return type(cause).__name__ if cause is not None else type(error).__name__


class Outcomes:
    """
    What one attempt's outcome amounts to: its `Answer`, or the typed error
    it is; each outcome reported to the gate the caller passes (a session's
    gate may be replaced while it runs).

    Args:
        api_key: the key no error may carry (redacted from every one).
        clock: wall time, for an HTTP-date ``Retry-After``.
        total: the attempts' overall deadline, seconds (for its error).
    """

    __slots__ = ("_api_key", "_clock", "_total", "read_timeout")

    def __init__(self, *, api_key: str | None, clock: Clock, total: float) -> None:
        self._api_key = api_key
        self._clock = clock
        self._total = total
        #: The read deadline a deadline wheel keeps, for its error (None: none).
        self.read_timeout: float | None = None

    def same_as_seen(
        self, gate: Admission, raw: RawAnswer, seen: int, elapsed: float, now: float
    ) -> Answer | None:
        """
        A poll's 2xx answer the caller already read (and found no error in):
        it needs neither decoding nor classifying again. None if it differs.
        """
        status, headers, body = raw
        # A running prediction answers the same bytes poll after poll.
        fingerprint = hash(body)
        if fingerprint != seen or not 200 <= status <= 299:
            return None
        gate.record(status, None, RequestKind.POLL, now=now)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("GET poll -> %d (unchanged) in %.3fs", status, elapsed)
        return Answer.same_as_seen(
            status, headers, body, elapsed=elapsed, fingerprint=fingerprint
        )

    def conclude(
        self,
        gate: Admission,
        call: Call,
        outcome: RawAnswer | Exception | None,
        expired: Expired | bool,
        started: float,
        now: float,
    ) -> Answer:
        """
        An attempt's answer, or the error (or `RetryableError`, when the
        call's retry mode allows another attempt) it amounts to.
        """
        elapsed = now - started
        # Logging calls are guarded: their arguments (label, extra) cost more
        # than the check, on every attempt.
        debug = logger.isEnabledFor(logging.DEBUG)
        if type(outcome) is not RawAnswer:
            assert not isinstance(outcome, RawAnswer)
            if expired == "read":
                # The wheel's read deadline: what aiohttp's own would have said.
                outcome = httpx.ReadTimeout(
                    f"no part of the answer came within {self.read_timeout:g}s"
                )
            failure = self._failure(gate, call, outcome, expired in (True, "total"))
            if debug:
                logger.debug(
                    "%s -> %s after %.3fs",
                    call.label,
                    type(outcome).__name__ if outcome is not None else "deadline",
                    elapsed,
                    extra=call.extra,
                )
            # Each failure carries its own cause (the httpx error, the refusal).
            raise redact(failure, self._api_key)

        if call.seen:
            unchanged = self.same_as_seen(gate, outcome, call.seen, elapsed, now)
            if unchanged is not None:
                return unchanged
        status, headers, body = outcome
        if debug:
            logger.debug(
                "%s -> %d in %.3fs", call.label, status, elapsed, extra=call.extra
            )
        # The next poll of the same prediction compares with this.
        fingerprint = hash(body) if call.purpose is RequestKind.POLL else 0
        # Classified just below; an answer that is an error is raised, never
        # returned, so a returned answer is always one checked for errors.
        answer = Answer.read(
            status,
            headers,
            body,
            elapsed=elapsed,
            error_checked=True,
            fingerprint=fingerprint,
        )
        error = redact(error_for(answer, call, now=self._clock.wall()), self._api_key)
        if error is None:
            gate.record(status, None, call.purpose, now=now)
            return answer
        # Classify by the API's own code: a 429 may arrive inside an HTTP 200.
        retry_after = None
        if isinstance(error, APIError):
            status = error.status_code or status
            retry_after = error.retry_after
        cause = gate.record(status, retry_after, call.purpose, error.message)
        if cause is not None and isinstance(error, RateLimitError):
            error.refused_by = cause.value
        if retries_status(call.retry, status):
            raise RetryableError(error, retry_after)
        raise submit_failure(error, call)

    def _failure(
        self, gate: Admission, call: Call, outcome: Exception | None, timed_out: bool
    ) -> Exception:
        """The error (or `RetryableError`) for an attempt that got no usable answer."""
        if isinstance(outcome, BodyRefusedError):
            status = outcome.status_code
            gate.record(status, None, call.purpose)
            return refused_failure(outcome, call, status)
        gate.record(None, None, call.purpose)
        if outcome is None or timed_out:
            return deadline_failure(call, self._total)
        if isinstance(outcome, httpx.InvalidURL) or (
            isinstance(outcome, httpx.RemoteProtocolError)
            and "location header" in str(outcome).lower()
        ):
            # httpx refused a redirect's Location before we saw the answer (an
            # injected client; the client we build hides it from httpx).
            return redirect_failure(call, None)
        return transport_failure(outcome, call)
