"""
The exception tree. Everything atlas_async raises derives from `AtlasError`::

    AtlasError
    ├── APIError                 an error answer: status_code, message, request_id
    │   ├── InvalidRequestError          400, 413, 422
    │   ├── AuthenticationError          401
    │   ├── InsufficientBalanceError     402 (or an "insufficient balance" text)
    │   ├── PermissionDeniedError        403, 451
    │   ├── NotFoundError                404
    │   ├── RateLimitError               429: retry_after
    │   └── ServerError                  5xx
    ├── TransportError           no usable answer; __cause__ is httpx's error
    │   └── SubmissionUnknownError       a submit sent, no answer: it may bill
    ├── UnexpectedResponseError  the body broke the contract; raw body attached
    ├── PredictionError          prediction_id, last prediction
    │   ├── PredictionFailedError        failed on the server: error, error_code
    │   ├── PredictionTimeoutError       our deadline passed (a TimeoutError)
    │   └── PredictionCancelledError     cancelled locally
    ├── BatchTimeoutError        a batch's deadline passed (a TimeoutError)
    ├── BudgetExceededError      not submitted: the batch's budget: budget, price
    ├── QuoteExceedsBalanceError a batch's quote is above the balance: both
    ├── DownloadError            an output could not be saved (no partial file)
    ├── ConfigurationError       bad arguments or environment (a ValueError)
    │   └── InvalidArgumentError         a public call's argument is malformed
    │       └── ArgumentTypeError            of the wrong type (also a TypeError)
    ├── JournalError             a batch journal that cannot be used as asked
    └── ClientStateError         used outside ``async with`` (a RuntimeError)
        └── ClientClosedError            used after close

Recovery data lives in attributes, not only in the message: ``prediction_id``,
``status_code``, ``request_id``, ``retry_after``. Constructors are keyword-only.

No error ever holds the API key. Messages are built from server text and our own
words, never from request headers; and since the server may echo the key back
(in ``request_id``, ``error``, a body), every error scrubs itself where it is
built: its message and each attribute, whenever one is set, pass through the one
redaction (``_core.safety.redact_value``), which removes the key of every client
open in this process and any quoted ``Bearer`` credential. So no code path that
builds an error from server data can forget to redact it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .safety import redact_text, redact_value

if TYPE_CHECKING:
    from .models import Kind, Prediction, PredictionStatus

__all__ = [
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
]


class AtlasError(Exception):
    """
    The root of every error atlas_async raises.

    Catch this to handle anything the SDK reports; catch a subclass to handle one
    kind of trouble. ``prediction_id`` is set whenever the error is about one
    prediction.
    """

    message: str
    prediction_id: str | None

    def __init__(self, message: str, *, prediction_id: str | None = None) -> None:
        message = redact_text(message)
        super().__init__(message)
        self.message = message
        self.prediction_id = prediction_id

    def __setattr__(self, name: str, value: Any) -> None:
        # Every attribute, whoever sets it and when: what the server said may
        # carry the key back (request_id, error, body, a Prediction's raw).
        super().__setattr__(name, redact_value(value))

    def __str__(self) -> str:
        if self.prediction_id is not None and self.prediction_id not in self.message:
            return f"{self.message} (prediction {self.prediction_id})"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors break the default pickling; rebuild from state.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[AtlasError], state: dict[str, Any]) -> AtlasError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class APIError(AtlasError):
    """
    The API answered with an error: a non-2xx status, or an error envelope in a 2xx.

    Attributes:
        status_code: the HTTP status, or the envelope's ``code`` when that is the
            more specific one.
        message: the server's text (``msg``, ``message`` or ``error``).
        request_id: from the body's ``request_id`` or the ``X-Request-ID`` header.
        retry_after: seconds the server asked us to wait, when it said so.
        body: the decoded JSON body, or the text when it was not JSON.
    """

    status_code: int | None
    request_id: str | None
    retry_after: float | None
    body: object

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: object = None,
        prediction_id: str | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        parts = [
            f"{self.status_code}: {self.message}" if self.status_code else self.message
        ]
        if self.prediction_id is not None:
            parts.append(f"prediction {self.prediction_id}")
        if self.request_id is not None:
            parts.append(f"request id {self.request_id}")
        if self.retry_after is not None:
            parts.append(f"retry after {self.retry_after:g}s")
        if len(parts) == 1:
            return parts[0]
        return f"{parts[0]} ({', '.join(parts[1:])})"


class InvalidRequestError(APIError):
    """The request was refused as malformed (400, 413, 422): fix it, don't retry."""


class AuthenticationError(APIError):
    """
    The key is missing, unknown or expired (401).

    The gateway authenticates before it routes, so a wrong URL path also gives 401.
    """


class InsufficientBalanceError(APIError):
    """The account has no balance left (402): top up, then submit again."""


class PermissionDeniedError(APIError):
    """The account may not use this model or region (403, 451)."""


class NotFoundError(APIError):
    """The prediction, model or path does not exist (404)."""


class RateLimitError(APIError):
    """
    Too many requests (429); ``retry_after`` says how long to wait when known.

    ``refused_by`` says which limit refused it, as the client attributed it:
    ``"rate"`` (the account's request rate) or ``"window"`` (the model's
    unfinished predictions); None when it was not attributed.
    """

    refused_by: str | None = None


class ServerError(APIError):
    """The server failed (5xx); polls retry these, submits only on 503."""


class TransportError(AtlasError):
    """
    No usable answer came: the connection failed, dropped, or timed out.

    ``__cause__`` is the httpx exception. ``method`` and ``url`` say which request.
    """

    method: str | None
    url: str | None

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        prediction_id: str | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.method = method
        self.url = url


class SubmissionUnknownError(TransportError):
    """
    A submit was sent and no answer came back.

    The prediction may exist and may be billed, so the SDK never re-sends it on its
    own. `AtlasClient.reconcile` settles it from the account's history (a batch
    does so by itself); or resubmit knowingly.

    Attributes:
        kind, model: what was submitted.
        request_body: the JSON body that was sent (for `reconcile`).
        sent_after, sent_before: wall times (Unix seconds) between which the
            server may have received it.
        candidates: after an undecided `reconcile`, the ids it might be.
    """

    kind: Kind | None
    model: str | None
    request_body: Any
    sent_after: float | None
    sent_before: float | None
    candidates: tuple[str, ...]

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        kind: Kind | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.kind = kind
        self.model = model
        self.request_body = None
        self.sent_after = None
        self.sent_before = None
        self.candidates = ()


class UnexpectedResponseError(AtlasError):
    """
    The body broke the wire contract: not JSON, no prediction id, a wrong shape.

    ``body`` holds what came (decoded JSON or text), ``status_code`` the HTTP status.
    """

    status_code: int | None
    body: object

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: object = None,
        prediction_id: str | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.status_code = status_code
        self.body = body


class PredictionError(AtlasError):
    """
    Something happened to one prediction: it failed, timed out, or was cancelled.

    ``prediction`` is the last snapshot seen, when there was one.
    """

    prediction_id: str
    prediction: Prediction | None

    def __init__(
        self,
        message: str,
        *,
        prediction_id: str,
        prediction: Prediction | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.prediction = prediction


class PredictionFailedError(PredictionError):
    """
    The server ended the prediction without a result (failed, timeout, canceled).

    Also raised for a ``completed`` prediction with no outputs. ``error`` is the
    server's text and ``error_code`` its numeric code (1039: content moderation).
    """

    error: str | None
    error_code: int | None
    status: PredictionStatus | None

    def __init__(
        self,
        message: str,
        *,
        prediction_id: str,
        prediction: Prediction | None = None,
        error: str | None = None,
        error_code: int | None = None,
        status: PredictionStatus | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id, prediction=prediction)
        self.error = error
        self.error_code = error_code
        self.status = status


class PredictionTimeoutError(PredictionError, TimeoutError):
    """
    The prediction's deadline passed before it ended.

    The prediction may still finish on the server: ``client.attach(prediction_id)``
    resumes waiting. ``last_status`` is the last status seen; ``timeout`` the
    seconds that were allowed.
    """

    last_status: PredictionStatus | None
    timeout: float | None

    def __init__(
        self,
        message: str,
        *,
        prediction_id: str,
        prediction: Prediction | None = None,
        last_status: PredictionStatus | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id, prediction=prediction)
        self.last_status = last_status
        self.timeout = timeout


class PredictionCancelledError(PredictionError):
    """The prediction's future was cancelled locally; the server job was not touched."""


class BatchTimeoutError(AtlasError, TimeoutError):
    """
    A batch's ``batch_timeout`` passed before this item finished.

    ``prediction_id`` is set when the item had been submitted: it may still finish
    on the server, and a resumed run (same journal) attaches to it again. Items
    never sent stay pending in the journal. ``timeout`` is the batch's limit in
    seconds.
    """

    timeout: float | None

    def __init__(
        self,
        message: str,
        *,
        prediction_id: str | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.timeout = timeout


class BudgetExceededError(AtlasError):
    """
    A batch item was not submitted: its quoted price would take the batch past
    its ``budget`` (or it has no price to check against one).

    Not a failure: nothing was sent and the item stays pending in the journal,
    so a later run with a larger budget sends it (docs/cost.md). ``budget`` is
    the limit, ``committed`` what was spent or held when the item was refused,
    ``price`` its quoted price (None when it could not be priced), all
    `~decimal.Decimal`.
    """

    budget: Decimal | None
    committed: Decimal | None
    price: Decimal | None

    def __init__(
        self,
        message: str,
        *,
        budget: Decimal | None = None,
        committed: Decimal | None = None,
        price: Decimal | None = None,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.committed = committed
        self.price = price


class QuoteExceedsBalanceError(AtlasError):
    """
    A batch was stopped before anything was submitted: what it would cost at
    the catalog's prices is more than the account's available balance.

    ``quote`` and ``available`` are the two amounts (`~decimal.Decimal`, in
    ``currency``). Top up, lower the budget, or run it with
    ``check_balance=False`` (CLI: ``--no-balance-check``).
    """

    quote: Decimal | None
    available: Decimal | None
    currency: str

    def __init__(
        self,
        message: str,
        *,
        quote: Decimal | None = None,
        available: Decimal | None = None,
        currency: str = "usd",
    ) -> None:
        super().__init__(message)
        self.quote = quote
        self.available = available
        self.currency = currency


class DownloadError(AtlasError):
    """
    An output could not be saved: an error answer, retries exhausted, too large,
    invalid inline data, or a failed write. No partial file is left behind.

    Attributes:
        url: the URL without its query string (signed URLs carry tokens there).
        output_index: which output of the prediction.
        status_code: the HTTP status, when an answer came.
    """

    url: str | None
    output_index: int | None
    status_code: int | None

    def __init__(
        self,
        message: str,
        *,
        prediction_id: str | None = None,
        url: str | None = None,
        output_index: int | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.url = url
        self.output_index = output_index
        self.status_code = status_code


class OutputsGoneError(DownloadError):
    """
    A completed prediction's outputs are gone for good: the prediction is no
    longer found, or its freshly fetched output URLs answer 403, 404 or 410
    (media expire, 14 days by default). Downloading again cannot help; only a
    new prediction makes them again (CLI: ``batch --retry-failed``).
    """


class ConfigurationError(AtlasError, ValueError):
    """An argument or environment setting is wrong (no key, insecure URL, ...)."""


class InvalidArgumentError(ConfigurationError):
    """
    A public call was given a malformed argument; nothing was sent.

    Raised before the first byte for values no request could carry: NaN or an
    infinite number, a parameter that is not JSON, a prediction id with ``/``,
    ``..`` or a control character, a non-positive timeout, an unknown kind. A
    `ConfigurationError`, so also a ``ValueError``.

    Attributes:
        argument: the argument's name as the call spells it (``"timeout"``,
            ``"params['seed']"``), or None.
    """

    argument: str | None

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """
    A public call was given an argument of the wrong type; nothing was sent.

    An `InvalidArgumentError` (so a ``ValueError``) that is also a
    ``TypeError``: catch whichever fits.
    """


class JournalError(AtlasError):
    """A batch journal cannot be used as asked (in use, newer, or corrupt)."""


class ClientStateError(AtlasError, RuntimeError):
    """The client was used outside ``async with`` or from another event loop."""


class ClientClosedError(ClientStateError):
    """The client was used after its ``async with`` block ended."""
