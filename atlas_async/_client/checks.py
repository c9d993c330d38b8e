"""The argument checks of `AtlasClient`'s constructor and calls (pure, beside it)."""

from __future__ import annotations

import inspect
import random
from collections.abc import Mapping
from datetime import datetime, timedelta

import httpx

from .._batch.journal import Journal
from .._core.clock import Clock
from .._core.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
)
from .._core.flow import Limits
from .._core.models import Kind
from .._core.policies import PollPolicy, check_poll_option
from .._core.retry import BackoffPolicy, Retry
from .._core.validate import (
    check_bool,
    check_callable,
    check_count,
    check_duration,
    check_instance,
    check_iterable,
    check_path,
    check_real,
    describe,
)
from .._net.transport import TRANSPORT_NAMES
from .._ops.download import download_outputs

# What `download(**options)` accepts: download_outputs' own keywords, minus
# those the client supplies itself.
DOWNLOAD_OPTIONS = frozenset(inspect.signature(download_outputs).parameters) - {
    "prediction",
    "directory",
    "http",
    "api_origin",
    "clock",
    "rng",
}


def check_client_options(
    *,
    api_key: object,
    base_url: object,
    timeout: object,
    max_in_flight: object,
    max_concurrent_requests: object,
    requests_per_second: object,
    limits: object,
    poll: object,
    http_client: object,
    transport: object,
    clock: object,
    rng: object,
    max_retries: object,
    retry: object,
    poll_retry: object,
    allow_insecure_http: object,
) -> PollPolicy | dict[Kind, PollPolicy] | None:
    """Check the constructor's options by type and range; return ``poll`` checked."""
    for name, value in (("api_key", api_key), ("base_url", base_url)):
        if value is not None and not isinstance(value, str):
            raise ArgumentTypeError(
                f"{name} must be a str, not {type(value).__name__}", argument=name
            )
    if isinstance(timeout, (int, float, timedelta)):
        check_duration(timeout, "timeout")
    elif timeout is not None and not all(
        hasattr(timeout, phase) for phase in ("connect", "read", "write", "pool")
    ):
        raise ArgumentTypeError(
            "timeout must be seconds, a timedelta, atlas_async.Timeouts or"
            f" httpx.Timeout, not {type(timeout).__name__} ({describe(timeout)})",
            argument="timeout",
        )
    if max_in_flight is not None:
        check_count(max_in_flight, "max_in_flight")
    check_count(max_concurrent_requests, "max_concurrent_requests")
    if requests_per_second is not None:
        check_real(requests_per_second, "requests_per_second", above=0.0)
    if limits is not None:
        check_instance(limits, Limits, "limits", "an atlas_async.Limits")
    checked_poll = check_poll_option(poll)
    if http_client is not None:
        check_instance(
            http_client, httpx.AsyncClient, "http_client", "an httpx.AsyncClient"
        )
    names = ", ".join(map(repr, TRANSPORT_NAMES))
    if isinstance(transport, str) and transport not in TRANSPORT_NAMES:
        raise InvalidArgumentError(
            f"transport must be one of {names} or an httpx.AsyncBaseTransport,"
            f" not {describe(transport)}",
            argument="transport",
        )
    if transport is not None and not isinstance(
        transport, (str, httpx.AsyncBaseTransport)
    ):
        raise ArgumentTypeError(
            f"transport must be one of {names} or an httpx.AsyncBaseTransport,"
            f" not {type(transport).__name__} ({describe(transport)})",
            argument="transport",
        )
    if clock is not None and not isinstance(clock, Clock):
        raise ArgumentTypeError(
            "clock must be a Clock (now, wall, sleep_until), not"
            f" {type(clock).__name__}",
            argument="clock",
        )
    if rng is not None:
        check_instance(rng, random.Random, "rng", "a random.Random")
    check_count(max_retries, "max_retries", minimum=0)
    if retry is not None:
        check_instance(retry, Retry, "retry", "an atlas_async.Retry")
    if poll_retry is not None and not isinstance(poll_retry, (Retry, BackoffPolicy)):
        raise ArgumentTypeError(
            "poll_retry must be a BackoffPolicy or a Retry, not"
            f" {type(poll_retry).__name__} ({describe(poll_retry)})",
            argument="poll_retry",
        )
    check_bool(allow_insecure_http, "allow_insecure_http")
    return checked_poll


def check_batch_options(
    requests: object,
    *,
    journal: object,
    max_in_flight: object,
    on_progress: object,
    download_to: object,
    timeout: object,
    batch_timeout: object,
    resubmit_unknown: object,
    download_concurrency: object,
) -> None:
    """Check `AtlasClient.generate_many`'s options (its requests are checked as
    they are read, all before the first submit)."""
    check_iterable(
        requests,
        "requests",
        "an iterable of GenerationRequest or mappings (a list, a generator)",
    )
    if journal is not None and not isinstance(journal, Journal):
        check_path(journal, "journal")
    if max_in_flight is not None:
        check_count(max_in_flight, "max_in_flight")
    check_callable(on_progress, "on_progress")
    if download_to is not None:
        check_path(download_to, "download_to")
    check_duration(timeout, "timeout")
    check_duration(batch_timeout, "batch_timeout")
    check_bool(resubmit_unknown, "resubmit_unknown")
    check_count(download_concurrency, "download_concurrency")


def check_download_options(options: Mapping[str, object]) -> None:
    """Check `AtlasClient.download`'s options: known names, sound values."""
    unknown = sorted(set(options) - DOWNLOAD_OPTIONS)
    if unknown:
        raise ArgumentTypeError(
            f"download() got unknown options {', '.join(unknown)}; it accepts"
            f" {', '.join(sorted(DOWNLOAD_OPTIONS))}",
            argument=unknown[0],
        )
    for name, minimum in (("max_concurrency", 1), ("retries", 0)):
        if name in options:
            check_count(options[name], name, minimum=minimum)
    if options.get("max_bytes") is not None:
        check_count(options["max_bytes"], "max_bytes")
    prefix = options.get("name_prefix")
    if prefix is not None and not isinstance(prefix, str):
        # Only the type: the value is reduced to safe characters by the
        # download itself (the batch passes ids the server chose).
        raise ArgumentTypeError(
            f"name_prefix must be a str, not {type(prefix).__name__}",
            argument="name_prefix",
        )


def since_seconds(since: object) -> float | None:
    """``since`` as Unix seconds: an aware datetime or a finite number."""
    if since is None:
        return None
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise InvalidArgumentError(
                "since must be timezone-aware (datetime.now(timezone.utc))",
                argument="since",
            )
        return since.timestamp()
    return check_real(since, "since")
