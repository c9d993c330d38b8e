"""
What every ``atlas-async`` command shares: reaching Atlas (or the built-in
emulator), running the command's coroutine, and turning errors into one line
and an exit code.

Theory of operation
-------------------
A command builds a `Connection` from its options and hands `run` a coroutine
function. `run` is the only place that starts an event loop and the only place
that catches errors, so every command reports them the same way::

    ConfigurationError, JournalError, OSError   -> exit 2 (a usage problem:
                                                   bad option, file, folder,
                                                   journal, no key)
    any other AtlasError                        -> exit 1
    Ctrl-C                                      -> exit 130

each as one line, ``atlas-async: error: ...``, never a traceback. A bug (any
other exception) still shows its traceback: hiding it would help nobody.

Nothing a command prints carries the API key, even when the server echoes it
into an error, a prediction's ``error`` or an output: while `run` runs, the key
(``ATLASCLOUD_API_KEY``, and ``--api-key`` once `connection` reads it) is a live
secret, and stdout and stderr go through the one redaction
(``_core.safety.redact_text``) on their way out. The commands print after the
client has closed, so the client's own guard would no longer cover them.

``--emulator`` serves the emulator on a loopback socket inside the same event
loop (`open_client`), so the client talks real HTTP to it and needs no key.

The commands read the time only from their `Connection`'s clock, which
`connection` takes from `use_clock` (``cli.main(argv, clock=...)``): the real
`AnyioClock` unless a test passes its own. This module imports neither typer
nor rich, nor the client until a command opens one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._core.clock import Clock
from .._core.config import API_KEY_ENV, BASE_URL_ENV
from .._core.errors import AtlasError, ConfigurationError, JournalError
from .._core.extras import require
from .._core.models import Prediction
from .._core.policies import ExponentialPolicy
from .._core.safety import redact_text, register_secret, unregister_secrets
from .._net.clock import AnyioClock
from .._net.redaction import guard_secret
from . import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)

if TYPE_CHECKING:
    from .._client import AtlasClient
    from ..emulator import EmulatorConfig

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "NO_KEY",
    "Connection",
    "connection",
    "error_line",
    "json_line",
    "on_interrupt",
    "open_client",
    "prediction_json",
    "run",
    "shown_path",
    "use_clock",
    "with_client",
]


NO_KEY = (
    f"no API key: set {API_KEY_ENV} (export {API_KEY_ENV}=...) or pass "
    "--api-key; or add --emulator to try the built-in emulator"
)
_T = TypeVar("_T")
_EMULATOR_KEY = "atlas-async-emulator"  # any key works against the emulator
# The clock of the command line running in this context (None: the real one).
_clock: ContextVar[Clock | None] = ContextVar("atlas_async_cli_clock", default=None)


class _RunSecrets:
    """Who owns the keys a `run` makes live (the registry holds owners weakly)."""


@attrs.define
class _RunNotes:
    """What a running command tells `run` for its last words: where it sent its
    requests (for the hints of an error) and what to say on Ctrl-C."""

    interrupted: str
    base_url: str | None = None


# The notes of the command running in this context, while `run` runs. A holder,
# not values: the command runs in asyncio's copy of this context.
_notes: ContextVar[_RunNotes | None] = ContextVar("atlas_async_cli_notes", default=None)


def on_interrupt(message: str) -> None:
    """On Ctrl-C, say ``message`` after ``atlas-async: interrupted``."""
    notes = _notes.get()
    if notes is not None:
        notes.interrupted = message


# The keys of the command running in this context, while `run` runs.
_secrets: ContextVar[_RunSecrets | None] = ContextVar(
    "atlas_async_cli_secrets", default=None
)


@contextlib.contextmanager
def use_clock(clock: Clock | None) -> Iterator[None]:
    """Within the block, commands read the time from ``clock`` (None: the real one)."""
    token = _clock.set(clock)
    try:
        yield
    finally:
        _clock.reset(token)


@attrs.frozen(kw_only=True)
class Connection:
    """Where a command sends its requests (Atlas, or an emulator it starts), and
    the clock it reads the time from."""

    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str | None = None
    emulator: EmulatorConfig | None = None
    clock: Clock = attrs.field(factory=AnyioClock, eq=False)

    def require_key(self) -> None:
        """Raise the `NO_KEY` usage error when Atlas needs a key we lack."""
        if self.emulator is None and not (
            (self.api_key or "").strip() or os.environ.get(API_KEY_ENV, "").strip()
        ):
            raise ConfigurationError(NO_KEY)


def connection(
    *,
    api_key: str | None,
    base_url: str | None,
    emulator: bool,
    time_scale: float = 1.0,
    seed: int = 0,
    faults: Iterable[str] = (),
) -> Connection:
    """
    Build a `Connection` from the common options.

    Raises:
        ConfigurationError: a bad ``--fault`` or ``--time-scale``.
        MissingExtraError: ``--emulator`` without the emulator extra.
    """
    chosen = _clock.get()
    clock = chosen if chosen is not None else AnyioClock()
    owner = _secrets.get()
    if owner is not None and api_key:
        register_secret(owner, api_key.strip())
    if not emulator:
        notes = _notes.get()
        if notes is not None:
            notes.base_url = base_url or os.environ.get(BASE_URL_ENV, "").strip()
        return Connection(api_key=api_key, base_url=base_url, clock=clock)
    require("uvicorn", "emulator", feature="--emulator")
    from ..emulator import config_from_options

    try:
        config = config_from_options(
            seed=seed, time_scale=time_scale, faults=tuple(faults)
        )
    except ValueError as exc:
        from .hints import option_names

        raise ConfigurationError(option_names(str(exc))) from None
    return Connection(api_key=api_key, emulator=config, clock=clock)


@asynccontextmanager
async def open_client(
    conn: Connection, *, needs_key: bool = True, **options: Any
) -> AsyncIterator[AtlasClient]:
    """
    Yield an open `AtlasClient` for ``conn``, serving the emulator first when
    asked (its address goes to stderr).

    Raises:
        ConfigurationError: no key for Atlas (when ``needs_key``).
    """
    from .._client import AtlasClient

    if conn.emulator is None:
        if needs_key:
            conn.require_key()
        async with AtlasClient(
            conn.api_key, base_url=conn.base_url, **options
        ) as client:
            yield client
        return
    from ..emulator import serve

    async with serve(conn.emulator) as running:
        scale = conn.emulator.time_scale
        sys.stderr.write(
            f"atlas-async: emulator on {running.base_url} (time scale {scale:g})\n"
        )
        # The default policy's priors are Atlas seconds (a video's first poll
        # at 30 s); the emulator runs `scale` times faster, so poll faster too.
        options.setdefault(
            "poll",
            ExponentialPolicy(first=1.0 / scale, factor=1.5, cap=5.0 / scale),
        )
        # Its history is written as predictions are created, on this clock.
        options.setdefault("history_lag", 1.0)
        async with AtlasClient(
            conn.api_key or _EMULATOR_KEY, base_url=running.base_url, **options
        ) as client:
            yield client


async def with_client(
    conn: Connection,
    call: Callable[[AtlasClient], Awaitable[_T]],
    *,
    needs_key: bool = True,
    **options: Any,
) -> _T:
    """
    Open a client for ``conn`` (see `open_client`), await ``call(client)`` with
    it, close it, and return the result: commands print after the client (and
    an ``--emulator``) has stopped.
    """
    async with open_client(conn, needs_key=needs_key, **options) as client:
        return await call(client)


def error_line(message: str) -> None:
    """Write one ``atlas-async: error: ...`` line to stderr."""
    text = " ".join(str(message).split()) or "unknown error"
    sys.stderr.write(f"atlas-async: error: {text}\n")
    sys.stderr.flush()


def json_line(value: object) -> None:
    """Write one JSON object as one line to stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def shown_path(path: Path) -> str:
    """A path as a person wants to read it: relative to here when inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def prediction_json(prediction: Prediction) -> dict[str, Any]:
    """The fields of a prediction a script wants, JSON-ready."""
    return {
        "id": prediction.id,
        "status": prediction.status.value,
        "model": prediction.model,
        "outputs": list(prediction.outputs),
        "error": prediction.error,
        "error_code": prediction.error_code,
        "created_at": None
        if prediction.created_at is None
        else prediction.created_at.isoformat(),
        "has_nsfw_contents": prediction.has_nsfw_contents,
    }


def _describe(error: OSError) -> str:
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def _exit_code(error: BaseException, notes: _RunNotes) -> int | None:
    """The exit code for an error we report as a line, or None for a bug."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, BrokenPipeError):
        # Whoever read stdout stopped (`| head`): nothing to say, and nobody to
        # say it to. Point stdout at devnull so the final flush stays quiet.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    if isinstance(error, ConfigurationError | JournalError):
        error_line(str(error))
        return EXIT_USAGE
    if isinstance(error, AtlasError):
        from .hints import error_hint

        hint = error_hint(error, base_url=notes.base_url)
        error_line(str(error) if hint is None else f"{error}; {hint}")
        return EXIT_FAILED
    if isinstance(error, OSError):
        error_line(_describe(error))
        return EXIT_USAGE
    if isinstance(error, KeyboardInterrupt):
        said = f" ({notes.interrupted})" if notes.interrupted else ""
        sys.stderr.write(f"atlas-async: interrupted{said}\n")
        return EXIT_INTERRUPTED
    return None


def run(main: Callable[[], Awaitable[int]], *, interrupted: str = "") -> int:
    """
    Run a command's coroutine in a new event loop; return its exit code.

    ``main`` is called inside the error handling, so building its arguments may
    raise usage errors too. On Ctrl-C, ``interrupted`` (or what the command
    said since with `on_interrupt`) follows ``atlas-async: interrupted``.
    """

    async def call() -> int:
        return await main()

    logger = logging.getLogger("atlas_async")
    handler = _StderrHandler(logging.WARNING)
    handler.setFormatter(logging.Formatter("atlas-async: %(message)s"))
    logger.addHandler(handler)
    owner = _RunSecrets()
    token = _secrets.set(owner)
    notes = _RunNotes(interrupted=interrupted)
    notes_token = _notes.set(notes)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Redacting(sys.stdout), _Redacting(sys.stderr)
    try:
        with guard_secret(_RunSecrets(), os.environ.get(API_KEY_ENV, "").strip()):
            try:
                return asyncio.run(call())
            except BaseException as exc:
                code = _exit_code(exc, notes)
                if code is None:
                    raise
                return code
    finally:
        sys.stdout, sys.stderr = streams
        _notes.reset(notes_token)
        _secrets.reset(token)
        unregister_secrets(owner)
        logger.removeHandler(handler)


class _Redacting:
    """A text stream that passes what is written through the one redaction."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _StderrHandler(logging.Handler):
    """Log lines (retries, recovered journal items) to whatever stderr is now.

    Looked up at each record, not kept: while a progress bar is live, rich
    swaps in a proxy that prints above the bar instead of through it.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001  logging's own convention
            self.handleError(record)
