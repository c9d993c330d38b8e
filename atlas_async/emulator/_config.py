"""
The emulator's configuration: frozen values, validated once, read everywhere.

Two kinds of time appear here, and the difference matters:

* **Atlas time** is how long things take on the real service. Prediction
  latencies (`EmulatorConfig.latency`, `EmulatorConfig.model_latency`), the
  warm-up window for fresh ids (`Faults.warmup_404_seconds`) and the webhook
  retry ladder (`EmulatorConfig.webhook_retry_delay`) are in Atlas time;
  the emulator divides them by `EmulatorConfig.time_scale`, so ``time_scale=100``
  turns a 30 s video into 0.3 s.
* **Clock time** is the emulator's own clock (``time.monotonic`` or a test's
  ``FakeClock.now``). HTTP-level settings stay in clock time whatever the scale:
  the per-key request rate (`Faults.rps`), the delay of a slow response
  (`Faults.slow_seconds`), the ``Retry-After`` value and the webhook POST's
  timeout (`EmulatorConfig.webhook_timeout`), because a benchmark's
  "50 requests per second" means real seconds.

Every fault is off by default; `Faults.from_options` builds one from the CLI's
``name=value`` strings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ._catalog import (
    DEFAULT_CATALOG,
    LatencyClass,
    ModelSpec,
    WireStyle,
    plausible_model_id,
)

__all__ = [
    "DEFAULT_LATENCY",
    "EmulatorConfig",
    "FaultTarget",
    "Faults",
    "LatencyClass",
    "LatencyRange",
    "config_from_options",
]

LatencyRange = tuple[float, float]
"""A (min, max) latency in Atlas seconds; the emulator draws uniformly within it."""


DEFAULT_LATENCY: Mapping[LatencyClass, LatencyRange] = {
    LatencyClass.IMAGE: (2.0, 10.0),
    LatencyClass.VIDEO: (30.0, 180.0),
    LatencyClass.IMAGE_TO_VIDEO: (30.0, 180.0),
    LatencyClass.IMAGE_TOOL: (5.0, 15.0),
    # Not in the predictions guide; the vendor's MCP server says 10-60 s.
    LatencyClass.AUDIO: (10.0, 60.0),
}


class FaultTarget(enum.Enum):
    """The endpoints HTTP-level faults (5xx, drops, slow, malformed) may hit."""

    SUBMIT = "submit"
    POLL = "poll"
    UPLOAD = "upload"
    MODELS = "models"
    FILES = "files"


SIGNATURE_PLACES = ("ed25519", "both", "bare")
"""`EmulatorConfig.webhook_signature`'s values."""


def _check_range(value: LatencyRange) -> LatencyRange:
    low, high = float(value[0]), float(value[1])
    if not 0.0 <= low <= high:
        raise ValueError(f"latency range must satisfy 0 <= min <= max, got {value!r}")
    return (low, high)


def _to_latency(value: Mapping[Any, Any]) -> Mapping[LatencyClass, LatencyRange]:
    merged = dict(DEFAULT_LATENCY)
    for key, rng in value.items():
        merged[LatencyClass(key.value if isinstance(key, LatencyClass) else key)] = (
            _check_range(rng)
        )
    return merged


def _to_model_latency(value: Mapping[str, Any]) -> Mapping[str, LatencyRange]:
    return {str(model): _check_range(rng) for model, rng in value.items()}


def _to_keys(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def _to_key_set(value: str | Iterable[str]) -> frozenset[str]:
    return frozenset({value}) if isinstance(value, str) else frozenset(value)


def _to_models(value: Iterable[ModelSpec]) -> tuple[ModelSpec, ...]:
    return tuple(value)


def _to_codes(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _to_targets(value: Iterable[FaultTarget | str]) -> frozenset[FaultTarget]:
    return frozenset(FaultTarget(v) for v in value)


def _to_model_limits(value: Mapping[str, int | None]) -> Mapping[str, int | None]:
    limits: dict[str, int | None] = {}
    for model, limit in value.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"max_in_flight_per_model needs model ids, got {model!r}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(
                f"max_in_flight_per_model[{model!r}] must be a positive integer"
                f" or None, got {limit!r}"
            )
        limits[model] = limit
    return limits


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


def _error_codes(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value or any(not 500 <= code <= 599 for code in value):
        raise ValueError(f"{attribute.name} must be 5xx status codes, got {value!r}")


@attrs.frozen(kw_only=True)
class Faults:
    """
    What goes wrong, and how often. Everything is off by default.

    Submits meet faults at one of two moments, chosen per fault on purpose:

    * **refused before create** (nothing exists, nothing is billed): ``rps``,
      ``max_in_flight`` and the per-model limits (429), ``server_error_rate``
      (5xx);
    * **after create** (the prediction exists and will finish): ``drop_rate``
      (the client gets no answer at all: the case ``SubmissionUnknownError``
      exists for), ``slow_rate`` (the answer comes late, so a client timeout
      also leaves a prediction behind) and ``malformed_rate`` (a 200 whose body
      is not JSON).

    Attributes:
        rps: per-key requests per second (a token bucket holding ``rps_burst``
            tokens, by default ``rps``); over it, 429. Counts every
            authenticated request.
        rps_burst: the bucket's size; None means ``max(1, rps)``.
        max_in_flight: per-key predictions not yet terminal; a submit over it
            gets 429.
        max_in_flight_per_model: per model id, how many of one key's
            predictions of that model may be unfinished at once (Atlas limits
            each model's concurrency per account); a submit over it gets 429
            "too many concurrent tasks for this model". None exempts a model
            from ``max_in_flight_model_default``. On the command line, one
            ``max_in_flight_model=MODEL:LIMIT`` per model.
        max_in_flight_model_default: the same limit for every model not in
            ``max_in_flight_per_model``.
        retry_after: when set, 429 answers carry ``Retry-After`` with this many
            seconds. The real media API sends none, hence the default.
        error_rate: fraction of predictions that end ``failed``.
        moderation_fraction: of those failures, the fraction that are content
            moderation (``error_code`` 1039, "...content policy...").
        timeout_rate: fraction of the predictions that do not fail that end
            ``timeout`` instead (the server gave up on them).
        verdict_5xx_rate: fraction of failed and timed-out predictions whose
            polls answer HTTP 500 with the verdict in the body; None leaves it
            to each model (`WireStyle.verdict_5xx_share`).
        server_error_rate: fraction of requests answered 500/502/503.
        server_error_codes: the statuses drawn from for those.
        drop_rate: fraction of requests whose connection closes without an answer.
        slow_rate: fraction of requests answered ``slow_seconds`` late.
        slow_seconds: the added delay, in clock seconds.
        malformed_rate: fraction of requests answered 200 with a non-JSON body.
        warmup_404_seconds: polls within this many Atlas seconds of a
            prediction's creation answer 404, as fresh ids sometimes do.
        targets: which endpoints the HTTP-level faults (5xx, drop, slow,
            malformed) apply to; by default submits, polls and uploads.
        webhook_delay: Atlas seconds between a prediction's end and its
            webhook's first attempt (Atlas's own queue; 0 by default).
        webhook_loss: fraction of webhooks never sent at all (a receiver
            that was down through every retry, a delivery dropped on the way).
    """

    rps: float | None = attrs.field(default=None, validator=_positive_or_none)
    rps_burst: float | None = attrs.field(default=None, validator=_positive_or_none)
    max_in_flight: int | None = attrs.field(default=None, validator=_positive_or_none)
    max_in_flight_per_model: Mapping[str, int | None] = attrs.field(
        factory=dict, converter=_to_model_limits, hash=False
    )
    max_in_flight_model_default: int | None = attrs.field(
        default=None, validator=_positive_or_none
    )
    retry_after: float | None = attrs.field(default=None, validator=_positive_or_none)
    error_rate: float = attrs.field(default=0.0, validator=_fraction)
    moderation_fraction: float = attrs.field(default=0.25, validator=_fraction)
    timeout_rate: float = attrs.field(default=0.0, validator=_fraction)
    verdict_5xx_rate: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_fraction)
    )
    server_error_rate: float = attrs.field(default=0.0, validator=_fraction)
    server_error_codes: tuple[int, ...] = attrs.field(
        default=(500, 502, 503), converter=_to_codes, validator=_error_codes
    )
    drop_rate: float = attrs.field(default=0.0, validator=_fraction)
    slow_rate: float = attrs.field(default=0.0, validator=_fraction)
    slow_seconds: float = attrs.field(default=1.0, validator=_non_negative)
    malformed_rate: float = attrs.field(default=0.0, validator=_fraction)
    warmup_404_seconds: float = attrs.field(default=0.0, validator=_non_negative)
    targets: frozenset[FaultTarget] = attrs.field(
        default=frozenset({FaultTarget.SUBMIT, FaultTarget.POLL, FaultTarget.UPLOAD}),
        converter=_to_targets,
    )
    webhook_delay: float = attrs.field(default=0.0, validator=_non_negative)
    webhook_loss: float = attrs.field(default=0.0, validator=_fraction)

    def model_limit(self, model: str) -> int | None:
        """Return how many predictions of ``model`` one key may have unfinished."""
        return self.max_in_flight_per_model.get(model, self.max_in_flight_model_default)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Return every fault name `from_options` accepts."""
        return tuple(
            _MODEL_OPTION if field.name == _MODEL_FIELD else field.name
            for field in attrs.fields(cls)
        )

    @classmethod
    def from_options(cls, options: Iterable[str], base: Faults | None = None) -> Faults:
        """
        Build faults from ``name=value`` strings, as the CLI's ``--fault`` gives.

        Lists (``server_error_codes``, ``targets``) are comma-separated. A
        per-model limit is ``max_in_flight_model=MODEL:LIMIT``, one option per
        model (split at the last ``:``; ``LIMIT`` may be ``none``); they add to
        ``base``'s.

        Example::

            Faults.from_options(["error_rate=0.1", "rps=50", "targets=poll"])
            Faults.from_options(["max_in_flight_model=kwaivgi/kling-v2.0:5"])

        Raises:
            ValueError: for an unknown name or a value that does not parse or
                validate; the message is one line and names the option.
        """
        base = base or cls()
        known = set(cls.names())
        changes: dict[str, Any] = {}
        model_limits = dict(base.max_in_flight_per_model)
        for option in options:
            name, sep, raw = option.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in known:
                names = ", ".join(cls.names())
                raise ValueError(
                    f"unknown fault {option!r} (expected NAME=VALUE; names: {names})"
                )
            if name == _MODEL_OPTION:
                model, limit = _parse_model_limit(raw.strip())
                model_limits[model] = limit
                changes[_MODEL_FIELD] = model_limits
            else:
                changes[name] = _parse_value(name, raw.strip())
        try:
            return attrs.evolve(base, **changes)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad fault value: {exc}") from None


_MODEL_FIELD = "max_in_flight_per_model"
_MODEL_OPTION = "max_in_flight_model"


def _parse_model_limit(raw: str) -> tuple[str, int | None]:
    # Model ids hold '/' and '.', never ':', so the last ':' is the separator.
    model, sep, limit = raw.rpartition(":")
    model, limit = model.strip(), limit.strip()
    problem = f"bad value for fault {_MODEL_OPTION}: {raw!r} (expected MODEL:LIMIT)"
    if not sep or not model:
        raise ValueError(problem)
    if limit.lower() in {"none", "off"}:
        return model, None
    try:
        return model, int(limit)
    except ValueError:
        raise ValueError(problem) from None


def _parse_value(name: str, raw: str) -> Any:
    try:
        if name == "server_error_codes":
            return tuple(int(part) for part in raw.split(",") if part)
        if name == "targets":
            return frozenset(
                FaultTarget(part.strip()) for part in raw.split(",") if part
            )
        if raw.lower() in {"none", "off", ""}:
            return None
        if name in ("max_in_flight", "max_in_flight_model_default"):
            return int(raw)
        return float(raw)
    except ValueError:
        raise ValueError(f"bad value for fault {name}: {raw!r}") from None


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """
    How the emulator behaves; every field has a sensible default.

    Example::

        config = EmulatorConfig(seed=7, time_scale=100, faults=Faults(error_rate=0.1))

    Attributes:
        seed: seeds the emulator's random streams (ids, latencies, outcomes,
            faults), so two runs with the same requests give the same answers.
        time_scale: how much faster than Atlas the emulator runs (100 = 100x).
        latency: (min, max) Atlas seconds per `LatencyClass`; rows left out keep
            `DEFAULT_LATENCY`. Keys may be the enum or its value.
        model_latency: (min, max) Atlas seconds for particular model ids.
        api_keys: the only valid keys; None accepts any non-empty bearer key.
        no_balance_keys: keys whose submits get 402 "insufficient balance".
        balance: the USD every key's account starts with. A submit freezes
            its prediction's price; a completed prediction is charged, a failed
            one released. A submit that the available balance cannot cover
            gets 402 "insufficient balance". The default is large enough that
            only a test that wants a 402 sees one.
        faults: what goes wrong; see `Faults`.
        models: the catalog ``GET /models`` lists. A submit may also name any
            plausible id outside it (``_catalog.infer_spec``): its kind is the
            endpoint's and its answers take the newer forms.
        style: when set, every model answers in these forms (`WireStyle`),
            whatever its own.
        epoch: the Unix time that the clock's first reading stands for (for
            ``created_at``); None takes the wall time when the emulator starts.
        max_upload_bytes: larger uploads get 413. Uploads stream to disk, so
            the default is Atlas's own (about 512 MB: speech-to-text audio).
        max_body_bytes: larger request bodies (other than uploads) get 413,
            as on Atlas (50 MB: "send a URL instead of inline Base64").
        state: a file to keep predictions, uploads and balances in, so an
            emulator started again with the same file finds them (uploads
            go to the folder ``<state>.files``); None keeps them in memory
            (uploads in a temporary folder).
        webhook_max_attempts: POSTs per webhook before the emulator gives up
            (Atlas makes about ten).
        webhook_retry_delay: Atlas seconds before the first redelivery; each
            later one waits twice as long (Atlas: about 10 s, 20 s, 40 s ...).
        webhook_retry_cap: the longest wait between two attempts, in Atlas
            seconds (Atlas: about 30 minutes).
        webhook_timeout: clock seconds the default sender waits for the
            receiver's answer before counting the attempt as failed.
        webhook_signature: where the Ed25519 signature travels:
            ``"ed25519"`` (``X-AtlasCloud-Webhook-Signature-Ed25519`` only, as
            today), ``"both"`` (also in the bare
            ``X-AtlasCloud-Webhook-Signature``) or ``"bare"`` (only there, as
            once the legacy HMAC is retired).
    """

    seed: int = 0
    time_scale: float = attrs.field(default=1.0, validator=_positive_or_none)
    latency: Mapping[LatencyClass, LatencyRange] = attrs.field(
        factory=dict, converter=_to_latency, hash=False
    )
    model_latency: Mapping[str, LatencyRange] = attrs.field(
        factory=dict, converter=_to_model_latency, hash=False
    )
    api_keys: frozenset[str] | None = attrs.field(default=None, converter=_to_keys)
    no_balance_keys: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_key_set
    )
    balance: float = attrs.field(default=1_000_000.0, validator=_non_negative)
    faults: Faults = attrs.field(factory=Faults)
    models: tuple[ModelSpec, ...] = attrs.field(
        default=DEFAULT_CATALOG, converter=_to_models
    )
    style: WireStyle | None = None
    epoch: float | None = None
    max_upload_bytes: int = attrs.field(
        default=512 * 1024 * 1024, validator=_positive_or_none
    )
    max_body_bytes: int = attrs.field(
        default=50 * 1024 * 1024, validator=_positive_or_none
    )
    state: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(Path)
    )
    webhook_max_attempts: int = attrs.field(default=10, validator=_positive_or_none)
    webhook_retry_delay: float = attrs.field(default=10.0, validator=_non_negative)
    webhook_retry_cap: float = attrs.field(default=1800.0, validator=_non_negative)
    webhook_timeout: float = attrs.field(default=10.0, validator=_positive_or_none)
    webhook_signature: str = attrs.field(
        default="ed25519", validator=attrs.validators.in_(SIGNATURE_PLACES)
    )

    def __attrs_post_init__(self) -> None:
        # A limit on a model the emulator would refuse would limit nothing.
        catalog = {spec.model for spec in self.models}
        unknown = sorted(
            model
            for model in self.faults.max_in_flight_per_model
            if model not in catalog and not plausible_model_id(model)
        )
        if unknown:
            raise ValueError(
                "max_in_flight_per_model names models the emulator does not"
                f" serve: {unknown}"
            )

    def webhook_retry_after(self, attempts: int) -> float:
        """
        Clock seconds between attempt ``attempts`` (1-based) and the next one.

        ``min(cap, delay * 2 ** (attempts - 1)) / time_scale``: the Atlas ladder,
        scaled like every other Atlas duration.
        """
        exponent = min(attempts - 1, 64)  # 2**64 * 10 s is past any cap
        ladder = min(self.webhook_retry_cap, self.webhook_retry_delay * 2.0**exponent)
        return ladder / self.time_scale

    def latency_for(self, spec: ModelSpec) -> LatencyRange:
        """Return the (min, max) Atlas seconds a prediction of ``spec`` takes."""
        override = self.model_latency.get(spec.model)
        if override is not None:
            return override
        return self.latency[spec.latency_class]


def config_from_options(
    *,
    seed: int = 0,
    time_scale: float = 1.0,
    api_keys: Iterable[str] = (),
    no_balance_keys: Iterable[str] = (),
    faults: Iterable[str] = (),
    latency: Iterable[str] = (),
    balance: float | None = None,
    state: str | Path | None = None,
    webhook_signature: str | None = None,
) -> EmulatorConfig:
    """
    Build a config from command-line style options (shared by the CLIs).

    Args:
        seed: `EmulatorConfig.seed`.
        time_scale: `EmulatorConfig.time_scale`.
        api_keys: the only valid keys; empty accepts any key.
        no_balance_keys: keys that get 402 on submits.
        faults: ``name=value`` strings (see `Faults.from_options`).
        latency: ``class=min,max`` strings (``image=1,2``) or
            ``model-id=min,max``, in Atlas seconds.
        balance: `EmulatorConfig.balance`; None keeps the default.
        state: `EmulatorConfig.state`, the file to keep state in.
        webhook_signature: `EmulatorConfig.webhook_signature`; None keeps the
            default.

    Raises:
        ValueError: with a one-line message naming the bad option.
    """
    classes: dict[str, LatencyRange] = {}
    models: dict[str, LatencyRange] = {}
    class_names = {member.value for member in LatencyClass}
    for option in latency:
        name, sep, raw = option.rpartition("=")
        try:
            low, high = (float(part) for part in raw.split(","))
        except ValueError:
            raise ValueError(
                f"bad latency {option!r} (expected NAME=MIN,MAX)"
            ) from None
        if not sep or not name:
            raise ValueError(f"bad latency {option!r} (expected NAME=MIN,MAX)")
        (classes if name in class_names else models)[name] = (low, high)
    keys = tuple(api_keys)
    extra: dict[str, Any] = {}
    if balance is not None:
        extra["balance"] = balance
    if state is not None:
        extra["state"] = state
    if webhook_signature is not None:
        extra["webhook_signature"] = webhook_signature
    try:
        return EmulatorConfig(
            seed=seed,
            time_scale=time_scale,
            api_keys=keys or None,
            no_balance_keys=tuple(no_balance_keys),
            faults=Faults.from_options(faults),
            latency=classes,
            model_latency=models,
            **extra,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
