"""
`RedisCoordinator`: an account's limits and webhook deliveries shared through
Redis (redis-py's asyncio client, the ``atlas-async[redis]`` extra).

Imported only when a client is given a coordinator. One connection pool per
client; every change is one Lua script (``coordinator_lua``), so it is atomic.

Per client, besides the calls of the gate and the admission, three tasks run:

* the keeper refreshes this process's ``alive`` key every third of the lease's
  TTL (its places live while the key does) and, after the server was lost,
  reconnects and writes back the places this process holds;
* the listener reads two channels: ``freed`` (a model's place came free:
  wake the submits waiting for it here) and ``deliveries`` (a verified webhook
  another process received: resolve the future if it waits here);
* the sender runs what must not make its caller wait (giving a place back, a
  cut, a publish) in the order it was asked.

Losing the server mid-run logs one warning and turns `active` off: the gate and
the admission use their per-process limits, places are counted locally, and
what was queued for the server is dropped (the reconnection writes the true
counts back). Nothing is submitted or resolved here, so nothing is lost or done
twice. At start, an unreachable server is a `TransportError`.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
import redis.asyncio as aioredis
import redis.exceptions
import sniffio

from .._core.clock import Clock
from .._core.errors import ConfigurationError, TransportError, UnexpectedResponseError
from .._core.flow import (
    DEFAULT_CUT_INTERVAL,
    DEFAULT_PROBE_EVERY,
    Limits,
    recovery_rate,
)
from .._core.models import Prediction
from .._core.windows import MAX_PATIENCE
from . import coordinator_lua as lua
from .coordinator import (
    REDIS_SCHEMES,
    SharedLimits,
    SlotOutcome,
    account_namespace,
    decode_delivery,
    encode_delivery,
)

__all__ = ["RedisCoordinator"]

logger = logging.getLogger("atlas_async")

#: Seconds a dead process's places live on: its ``alive`` key's TTL.
DEFAULT_LEASE_TTL = 5.0
#: A submit waiting for a model's place asks again at least this often, in
#: case a ``freed`` message was missed (or a dead holder's lease ran out).
RECHECK = 0.25
_MIN_RATE = 0.1
# Any failure of Redis (lost, read-only, out of memory...) costs pace, never a
# request: the client goes on with its own limits.
_DOWN = (redis.exceptions.RedisError, OSError)


def _where(url: str) -> str:
    """The URL without user or password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or parts.path
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path if parts.hostname else ''}"


class RedisCoordinator:
    """
    Share an account's limits and webhook deliveries through a Redis server.

    Example::

        coordinator = RedisCoordinator("redis://127.0.0.1:6379/0", lease_ttl=5)
        async with AtlasClient(coordinator=coordinator) as client:
            ...

    ``AtlasClient(coordinator="redis://...")`` builds one with the defaults.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` or
            ``unix://``.
        lease_ttl: seconds a killed process's in-flight places are held before
            they return to the others (>= 0.5).
        timeout: seconds one Redis call may take before the server counts as
            lost (the process then uses its own limits until it reconnects).
    """

    def __init__(
        self, url: str, *, lease_ttl: float = DEFAULT_LEASE_TTL, timeout: float = 2.0
    ) -> None:
        if not isinstance(url, str) or not url.startswith(REDIS_SCHEMES):
            raise ConfigurationError("RedisCoordinator needs a redis:// URL")
        if not (math.isfinite(lease_ttl) and lease_ttl >= 0.5):
            raise ConfigurationError(f"lease_ttl must be >= 0.5 s, got {lease_ttl!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigurationError(f"timeout must be > 0, got {timeout!r}")
        self._url = url
        self.lease_ttl = float(lease_ttl)
        self.timeout = float(timeout)

    @asynccontextmanager
    async def connect(
        self,
        *,
        account: str,
        limits: Limits,
        clock: Clock,
        on_delivery: Callable[[Prediction], object],
    ) -> AsyncIterator[SharedLimits]:
        """Join the account's shared state for one client (see `Coordinator`)."""
        if sniffio.current_async_library() != "asyncio":
            raise ConfigurationError("a Redis coordinator needs asyncio (not trio)")
        client = aioredis.from_url(
            self._url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )
        try:
            try:
                await client.ping()
            except _DOWN as exc:
                raise TransportError(
                    f"the coordinator {_where(self._url)} is unreachable: {exc}"
                ) from exc
            shared = _RedisShared(
                client,
                namespace=account_namespace(account),
                limits=limits,
                clock=clock,
                lease_ttl=self.lease_ttl,
                on_delivery=on_delivery,
            )
            async with shared.outbox, anyio.create_task_group() as tasks:
                await shared.start(tasks)
                try:
                    yield shared
                finally:
                    tasks.cancel_scope.cancel()
                    with anyio.CancelScope(shield=True):
                        await shared.leave()
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()

    def __repr__(self) -> str:
        return f"RedisCoordinator({_where(self._url)!r}, lease_ttl={self.lease_ttl:g})"


class _RedisShared:
    """One client's view of the shared state (`SharedLimits`)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str,
        limits: Limits,
        clock: Clock,
        lease_ttl: float,
        on_delivery: Callable[[Prediction], object],
    ) -> None:
        self._redis = client
        self._ns = namespace
        self._limits = limits
        self._clock = clock
        self._ttl = lease_ttl
        self._on_delivery = on_delivery
        self._holder = uuid.uuid4().hex[:16]
        self._alive = f"{namespace}alive:"
        self._rate_key, self._sent = f"{namespace}rate", f"{namespace}sent:"
        self._freed_channel = f"{namespace}freed"
        self._deliveries = f"{namespace}deliveries"
        self._reserve = client.register_script(lua.RESERVE)
        self._cut = client.register_script(lua.CUT)
        self._take = client.register_script(lua.TAKE)
        self._release = client.register_script(lua.RELEASE)
        self._active = True
        # Bumped on every loss: what was queued before it is not sent after.
        self._generation = 0
        self._held: Counter[str] = Counter()
        self._freed: dict[str, anyio.Event] = {}
        self._lost = anyio.Event()
        # The shared rate's parameters, as the last reserve read them.
        self._w_max: float | None = None
        self._cut_age = 0.0
        self._sent_rate = 0.0
        self._read_at = -math.inf
        send, receive = anyio.create_memory_object_stream[tuple[Any, ...]](math.inf)
        #: Closed by its owner when the client closes (ends the sender).
        self.outbox, self._inbox = send, receive

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, tasks: anyio.abc.TaskGroup) -> None:
        await self._redis.set(self._alive + self._holder, 1, px=int(self._ttl * 1000))
        tasks.start_soon(self._keeper)
        tasks.start_soon(self._sender)
        await tasks.start(self._listener)

    async def leave(self) -> None:
        """Give back every place this process holds, and its lease."""
        if not self._active:
            return
        try:
            with anyio.fail_after(self._ttl):
                for model in self._held:
                    await self._redis.hdel(self._model_key(model), self._holder)
                await self._redis.delete(self._alive + self._holder)
        except (*_DOWN, TimeoutError):
            pass  # the lease runs out by itself

    @property
    def active(self) -> bool:
        return self._active

    def _model_key(self, model: str) -> str:
        return f"{self._ns}model:{model}"

    def _lose(self, exc: BaseException) -> None:
        if self._active:
            logger.warning(
                "coordinator unreachable (%s); using per-process limits until it"
                " is back",
                exc,
            )
        self._active = False
        self._generation += 1
        self._lost.set()

    # -- the account's rate ------------------------------------------------------------

    def rate(self) -> float | None:
        if not self._active:
            return None
        limit = self._limits.requests_per_second
        if self._w_max is None:
            return limit
        elapsed = self._cut_age + max(0.0, self._clock.now() - self._read_at)
        return recovery_rate(self._w_max, elapsed, self._sent_rate, limit=limit)

    async def reserve(self) -> float | None:
        if not self._active:
            return None
        rate = self.rate()
        try:
            wait, w_max, age, sent = await self._reserve(
                keys=[self._rate_key, self._sent], args=[_num(rate)]
            )
        except _DOWN as exc:
            self._lose(exc)
            return None
        self._w_max = float(w_max) if w_max else None
        self._cut_age, self._sent_rate = float(age), float(sent)
        self._read_at = self._clock.now()
        return max(0.0, float(wait))

    def refused(self, *, cut: bool, retry_after: float | None) -> None:
        if self._active:
            args = (cut, self.rate(), retry_after or 0.0)
            self.outbox.send_nowait(("cut", self._generation, args))

    # -- the models' windows -----------------------------------------------------------

    async def take(self, model: str, deadline: float) -> bool:
        known = str(self._limits.limit_for(model) or 0)
        while True:
            if not self._active:
                self._held[model] += 1
                return True
            try:
                # Shielded: a place taken on the server and forgotten here (the
                # caller cancelled during the round trip) would never return.
                with anyio.CancelScope(shield=True):
                    took = await self._take(
                        keys=[self._model_key(model)],
                        args=[self._holder, known, self._alive],
                    )
            except _DOWN as exc:
                self._lose(exc)
                continue
            if took:
                self._held[model] += 1
                return True
            now = self._clock.now()
            if now >= deadline:
                return False
            event = self._freed.get(model)
            if event is None:
                event = self._freed[model] = anyio.Event()
            await _wait(event, self._clock, min(now + RECHECK, deadline))

    def release(self, model: str, outcome: SlotOutcome) -> None:
        if self._held[model] <= 0:
            return
        self._held[model] -= 1
        if not self._held[model]:
            del self._held[model]
        if self._active:
            self.outbox.send_nowait(("release", self._generation, (model, outcome)))

    # -- deliveries --------------------------------------------------------------------

    def publish(self, prediction: Prediction) -> None:
        if self._active:
            body = encode_delivery(prediction)
            self.outbox.send_nowait(("publish", self._generation, (body,)))

    # -- the tasks ---------------------------------------------------------------------

    async def _sender(self) -> None:
        async with self._inbox:
            await self._send_all()

    async def _send_all(self) -> None:
        async for op, generation, args in self._inbox:
            if generation != self._generation or not self._active:
                continue  # queued before a loss: the reconnection rewrote it
            try:
                await self._send(op, args)
            except _DOWN as exc:
                self._lose(exc)

    async def _send(self, op: str, args: tuple[Any, ...]) -> None:
        if op == "cut":
            cut, rate, retry_after = args
            await self._cut(
                keys=[self._rate_key, self._sent],
                args=[
                    "1" if cut else "0",
                    _num(rate),
                    repr(DEFAULT_CUT_INTERVAL),
                    repr(_MIN_RATE),
                    repr(float(retry_after)),
                ],
            )
        elif op == "release":
            model, outcome = args
            await self._release(
                keys=[self._model_key(model), self._freed_channel],
                args=[
                    self._holder,
                    str(outcome),
                    str(self._limits.limit_for(model) or 0),
                    str(DEFAULT_PROBE_EVERY),
                    self._alive,
                    model,
                    str(MAX_PATIENCE),
                ],
            )
        else:
            await self._redis.publish(self._deliveries, args[0])

    async def _keeper(self) -> None:
        while True:
            if self._active:
                with anyio.move_on_after(self._ttl / 3):
                    await self._lost.wait()
            else:
                await anyio.sleep(min(1.0, self._ttl / 3))
            try:
                if self._active:
                    await self._redis.set(
                        self._alive + self._holder, 1, px=int(self._ttl * 1000)
                    )
                else:
                    await self._rejoin()
            except _DOWN as exc:
                self._lose(exc)

    async def _rejoin(self) -> None:
        """Back after a loss: the lease, then the places held now, then active."""
        await self._redis.set(self._alive + self._holder, 1, px=int(self._ttl * 1000))
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in await self._redis.keys(f"{self._ns}model:*"):
                pipe.hdel(key, self._holder)
            for model, count in self._held.items():
                pipe.hset(self._model_key(model), self._holder, count)
            await pipe.execute()
        self._lost = anyio.Event()
        self._active = True
        logger.warning("coordinator reachable again; sharing the limits again")

    async def _listener(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._freed_channel, self._deliveries)
                    if not started:
                        started = True
                        task_status.started()
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            self._heard(message["channel"], message["data"])
            except _DOWN as exc:
                if not started:
                    raise
                self._lose(exc)
                await anyio.sleep(min(1.0, self._ttl / 3))

    def _heard(self, channel: bytes, data: bytes) -> None:
        if channel.decode() == self._freed_channel:
            event = self._freed.pop(data.decode(), None)
            if event is not None:
                event.set()
            return
        try:
            self._on_delivery(decode_delivery(data))
        except UnexpectedResponseError as exc:
            logger.warning("coordinator: unreadable delivery ignored (%s)", exc)
        except Exception:  # a bug must not stop the listener: polling goes on
            logger.exception("coordinator: a relayed delivery failed")


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


async def _wait(event: anyio.Event, clock: Clock, until: float) -> None:
    """Until ``event`` is set or the clock reaches ``until``, whichever first."""
    async with anyio.create_task_group() as group:

        async def alarm() -> None:
            await clock.sleep_until(until)
            group.cancel_scope.cancel()

        group.start_soon(alarm)
        await event.wait()
        group.cancel_scope.cancel()
