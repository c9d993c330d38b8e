"""
The client's coordinator, from its ``coordinator=`` argument or the
environment: a URL builds a ``RedisCoordinator``, imported only then (redis-py
is the ``atlas-async[redis]`` extra; a client without one never loads it).
"""

from __future__ import annotations

from collections.abc import Mapping

from .._core.errors import ArgumentTypeError, ConfigurationError
from .._net.coordinator import COORDINATOR_ENV, REDIS_SCHEMES, Coordinator

__all__ = ["resolve_coordinator"]


def resolve_coordinator(value: object, env: Mapping[str, str]) -> Coordinator | None:
    """
    The client's coordinator from ``coordinator=``, else `COORDINATOR_ENV`.

    A URL builds a ``RedisCoordinator`` (imported only then: redis-py is the
    ``atlas-async[redis]`` extra).

    Raises:
        ConfigurationError: a URL that is not ``redis://``, ``rediss://`` or
            ``unix://``, or redis-py is not installed.
        ArgumentTypeError: neither a URL, a `Coordinator`, nor None.
    """
    if value is None:
        value = env.get(COORDINATOR_ENV) or None
        if value is None:
            return None
    if isinstance(value, str):
        if not value.startswith(REDIS_SCHEMES):
            raise ConfigurationError(
                "coordinator must be a redis://, rediss:// or unix:// URL,"
                f" got {value.split('://', 1)[0]!r}://..."
            )
        try:
            from .._net.coordinator_redis import RedisCoordinator
        except ImportError as exc:  # pragma: no cover - the extra is installed in CI
            raise ConfigurationError(
                "coordinator= needs redis-py: pip install 'atlas-async[redis]'"
            ) from exc
        return RedisCoordinator(value)
    if not isinstance(value, Coordinator):
        raise ArgumentTypeError(
            "coordinator must be a redis:// URL or a Coordinator, got"
            f" {type(value).__name__}"
        )
    return value
