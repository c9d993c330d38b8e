"""
A faithful local Atlas Cloud: the asynchronous generation API on loopback or
in-process, with real media, fault injection and request accounting; any
plausible model id, the newer wire forms (``created``/``timeout``, live fields,
HTTP 500 verdicts, ``error`` objects, text outputs), history, billing, large
uploads, and state that can outlive the process (``EmulatorConfig.state``).

Install with the ``emulator`` extra (uvicorn). The core package never imports
this module, and this module imports nothing of the SDK: it is a separate
program with its own vocabulary (kinds, statuses, webhook signing), so tests
that run the SDK against it catch the SDK misreading the wire.

Theory of operation: one synchronous handler (``_handler.EmulatorCore``) turns a
request into an answer, reading a clock once; predictions are decided entirely
at creation (``_state``), so their status is a pure function of time. The one
background task is the webhook delivery loop (``_webhooks``), which runs inside
``async with emulator:`` or `serve` and POSTs each ``webhook_url`` prediction's
end when it is due, signed by the emulator's own Ed25519 key (``_signing``).
Faults are drawn from their own seeded random stream (``_faults``), counters
live in ``_stats``, and two thin adapters (``_adapters``) put the handler
behind an ASGI app (served by uvicorn, see ``_serve``) or an in-process httpx
transport.

Example::

    from atlas_async.emulator import EmulatorConfig, Faults, serve

    config = EmulatorConfig(time_scale=100, faults=Faults(error_rate=0.1))
    async with serve(config) as emu:
        print(emu.base_url)            # http://127.0.0.1:<port>/api/v1
        ...
        print(emu.stats.snapshot().duplicate_submissions)

The wire contract it follows is ``docs/wire.md``; ``docs/testing.md`` is the guide.
"""

from __future__ import annotations

from . import _extra as _extra  # first: a missing extra is one clear error
from ._adapters import (
    EmulatorApp as EmulatorApp,
    EmulatorTransport as EmulatorTransport,
)
from ._catalog import (
    CLASSIC_STYLE as CLASSIC_STYLE,
    DEFAULT_CATALOG as DEFAULT_CATALOG,
    NEWER_STYLE as NEWER_STYLE,
    InputRule as InputRule,
    LatencyClass as LatencyClass,
    MediaKind as MediaKind,
    ModelSpec as ModelSpec,
    Profile as Profile,
    WireStyle as WireStyle,
    infer_spec as infer_spec,
    model_spec as model_spec,
    plausible_model_id as plausible_model_id,
)
from ._config import (
    DEFAULT_LATENCY as DEFAULT_LATENCY,
    EmulatorConfig as EmulatorConfig,
    Faults as Faults,
    FaultTarget as FaultTarget,
    config_from_options as config_from_options,
)
from ._files import Upload as Upload
from ._http import ConnectionDroppedError as ConnectionDroppedError
from ._serve import (
    Emulator as Emulator,
    RunningEmulator as RunningEmulator,
    run_emulator as run_emulator,
    serve as serve,
)
from ._signing import SigningKey as SigningKey, WebhookSigning as WebhookSigning
from ._state import PredictionRecord as PredictionRecord
from ._stats import EmulatorStats as EmulatorStats, StatsSnapshot as StatsSnapshot
from ._webhooks import WebhookSender as WebhookSender, http_sender as http_sender

__all__ = [
    "CLASSIC_STYLE",
    "DEFAULT_CATALOG",
    "DEFAULT_LATENCY",
    "ConnectionDroppedError",
    "Emulator",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorStats",
    "EmulatorTransport",
    "FaultTarget",
    "Faults",
    "InputRule",
    "LatencyClass",
    "MediaKind",
    "ModelSpec",
    "NEWER_STYLE",
    "PredictionRecord",
    "Profile",
    "RunningEmulator",
    "SigningKey",
    "StatsSnapshot",
    "Upload",
    "WebhookSender",
    "WebhookSigning",
    "WireStyle",
    "config_from_options",
    "http_sender",
    "infer_spec",
    "model_spec",
    "plausible_model_id",
    "run_emulator",
    "serve",
]
