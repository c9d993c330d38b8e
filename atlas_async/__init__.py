"""
atlas_async: an asyncio-native SDK for Atlas Cloud's asynchronous generation API.

One `AtlasClient` submits predictions and a single poll scheduler drives them all,
each with its own backoff and deadline, inside the API's rate limits.

Example::

    import atlas_async as atlas

    async with atlas.AtlasClient() as client:   # key from ATLASCLOUD_API_KEY
        prediction = await client.generate_image(
            "google/nano-banana-2/text-to-image", prompt="a red fox"
        )
        print(prediction.outputs)
"""

from __future__ import annotations

import typing as _typing

from ._batch.types import (
    BatchProgress as BatchProgress,
    BatchResult as BatchResult,
    GenerationRequest as GenerationRequest,
)
from ._core.clock import Clock as Clock
from ._core.config import Timeouts as Timeouts
from ._core.errors import (
    APIError as APIError,
    ArgumentTypeError as ArgumentTypeError,
    AtlasError as AtlasError,
    AuthenticationError as AuthenticationError,
    BatchTimeoutError as BatchTimeoutError,
    BudgetExceededError as BudgetExceededError,
    ClientClosedError as ClientClosedError,
    ClientStateError as ClientStateError,
    ConfigurationError as ConfigurationError,
    DownloadError as DownloadError,
    InsufficientBalanceError as InsufficientBalanceError,
    InvalidArgumentError as InvalidArgumentError,
    InvalidRequestError as InvalidRequestError,
    JournalError as JournalError,
    NotFoundError as NotFoundError,
    OutputsGoneError as OutputsGoneError,
    PermissionDeniedError as PermissionDeniedError,
    PredictionCancelledError as PredictionCancelledError,
    PredictionError as PredictionError,
    PredictionFailedError as PredictionFailedError,
    PredictionTimeoutError as PredictionTimeoutError,
    QuoteExceedsBalanceError as QuoteExceedsBalanceError,
    RateLimitError as RateLimitError,
    ServerError as ServerError,
    SubmissionUnknownError as SubmissionUnknownError,
    TransportError as TransportError,
    UnexpectedResponseError as UnexpectedResponseError,
)
from ._core.flow import Limits as Limits
from ._core.models import (
    Kind as Kind,
    Lyrics as Lyrics,
    ModelInfo as ModelInfo,
    Prediction as Prediction,
    PredictionStatus as PredictionStatus,
    Transcript as Transcript,
    UploadedMedia as UploadedMedia,
)
from ._core.policies import (
    AdaptivePolicy as AdaptivePolicy,
    ExponentialPolicy as ExponentialPolicy,
    FixedPolicy as FixedPolicy,
    PollPolicy as PollPolicy,
)
from ._core.pricing import (
    Balance as Balance,
    ModelPrice as ModelPrice,
    ModelQuote as ModelQuote,
    Quote as Quote,
    Unpriced as Unpriced,
)
from ._core.retry import BackoffPolicy as BackoffPolicy, Retry as Retry
from ._core.statistics import (
    ClientStatistics as ClientStatistics,
    ModelFigures as ModelFigures,
)

if _typing.TYPE_CHECKING:
    from ._batch.iterator import BatchIterator as BatchIterator
    from ._batch.journal import (
        ItemState as ItemState,
        Journal as Journal,
        JournalEntry as JournalEntry,
    )
    from ._client import (
        DEFAULT_PREDICTION_TIMEOUTS as DEFAULT_PREDICTION_TIMEOUTS,
        AtlasClient as AtlasClient,
    )
    from ._net.clock import AnyioClock as AnyioClock
    from ._net.coordinator import Coordinator as Coordinator
    from ._net.coordinator_redis import RedisCoordinator as RedisCoordinator
    from ._ops.futures import (
        PredictionFuture as PredictionFuture,
        as_completed as as_completed,
    )

# Imported on first use (PEP 562), so `import atlas_async` stays pure: httpx
# imports rich and click for its own command line whenever they are installed,
# and the journal brings sqlite3. The names above cost only attrs.
_LAZY: dict[str, str] = {
    "AtlasClient": "._client",
    "DEFAULT_PREDICTION_TIMEOUTS": "._client",
    "BatchIterator": "._batch.iterator",
    "Journal": "._batch.journal",
    "JournalEntry": "._batch.journal",
    "ItemState": "._batch.journal",
    "PredictionFuture": "._ops.futures",
    "as_completed": "._ops.futures",
    "AnyioClock": "._net.clock",
    "Coordinator": "._net.coordinator",
    "RedisCoordinator": "._net.coordinator_redis",
}

__all__ = [
    # the client
    "AtlasClient",
    "Timeouts",
    "DEFAULT_PREDICTION_TIMEOUTS",
    "ClientStatistics",
    "Limits",
    "ModelFigures",
    "Coordinator",
    "RedisCoordinator",
    # batches
    "GenerationRequest",
    "BatchResult",
    "BatchProgress",
    "BatchIterator",
    "Journal",
    "JournalEntry",
    "ItemState",
    # waiting
    "PredictionFuture",
    "as_completed",
    # polling
    "PollPolicy",
    "AdaptivePolicy",
    "FixedPolicy",
    "ExponentialPolicy",
    "BackoffPolicy",
    "Retry",
    # errors
    "APIError",
    "ArgumentTypeError",
    "AtlasError",
    "AuthenticationError",
    "BatchTimeoutError",
    "BudgetExceededError",
    "ClientClosedError",
    "ClientStateError",
    "ConfigurationError",
    "DownloadError",
    "InsufficientBalanceError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "JournalError",
    "NotFoundError",
    "OutputsGoneError",
    "PermissionDeniedError",
    "PredictionCancelledError",
    "PredictionError",
    "PredictionFailedError",
    "PredictionTimeoutError",
    "QuoteExceedsBalanceError",
    "RateLimitError",
    "ServerError",
    "SubmissionUnknownError",
    "TransportError",
    "UnexpectedResponseError",
    # models
    "Kind",
    "Lyrics",
    "ModelInfo",
    "Prediction",
    "PredictionStatus",
    "Transcript",
    "UploadedMedia",
    # cost
    "Balance",
    "ModelPrice",
    "ModelQuote",
    "Quote",
    "Unpriced",
    # time
    "AnyioClock",
    "Clock",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        from importlib import import_module

        value = getattr(import_module(module, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name == "__version__":
        from importlib.metadata import version

        return version("atlas-async")
    raise AttributeError(f"module 'atlas_async' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
