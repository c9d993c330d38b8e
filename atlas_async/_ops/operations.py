"""
`Operations`: the raw calls of the API, each one request and one parse.

It is the scheduler's `PredictionSource` (``create`` submits, ``fetch`` polls)
and the client's one-shot calls (``get``, ``upload``, ``list_models``,
``download``). Each is: one `ApiSession.request` with the right `RetryMode`,
then one ``_wire`` reader on the answer decoded once. Nothing here waits for a
prediction: that is the scheduler's job.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from .._core.clock import Clock
from .._core.errors import SubmissionUnknownError
from .._core.models import Kind, ModelInfo, Prediction, UploadedMedia
from .._core.pricing import Balance
from .._core.sending import on_send, send_hook
from .._core.windows import RequestKind
from .._net.session import ApiSession, RetryMode
from .._wire import parse as wire
from .._wire.billing import balance_url, read_balance
from .._wire.history import HistoryPage, history_path, read_history_page
from .download import download_outputs
from .upload import FileInput, read_upload

__all__ = ["Operations", "PollMemo", "PredictionSource"]

logger = logging.getLogger("atlas_async")


class PredictionSource(Protocol):
    """
    Where the scheduler gets predictions: one submit, one poll.

    `Operations` is the real one; ``atlas_async.testing.FakeSource`` a scripted
    one for tests.
    """

    async def create(
        self, kind: Kind, model: str, params: Mapping[str, Any]
    ) -> Prediction:
        """Submit one prediction; never re-sent once it may have arrived."""
        ...

    async def fetch(
        self, prediction_id: str, memo: PollMemo | None = None
    ) -> Prediction:
        """
        Poll once, no retry: the scheduler decides when to try again.

        With a ``memo``, an answer byte for byte the one last read returns
        ``memo.latest`` itself (nothing decoded); a source may ignore it.
        """
        ...


class PollMemo(Protocol):
    """What the scheduler remembers of a prediction's last poll answer."""

    #: A fingerprint of the last answer read into `latest` (0: none yet).
    seen: int

    @property
    def latest(self) -> Prediction | None:
        """The snapshot that answer gave."""
        ...


class Operations:
    """
    The API's raw operations over one open `ApiSession`.

    Args:
        session: the open session every request goes through.
        clock: wall time for reading dates in answers (an HTTP-date Retry-After).
        rng: jitter for the download retries.
    """

    __slots__ = ("_clock", "_rng", "_session")

    def __init__(
        self, session: ApiSession, *, clock: Clock, rng: random.Random
    ) -> None:
        self._session = session
        self._clock = clock
        self._rng = rng

    async def create(
        self, kind: Kind, model: str, params: Mapping[str, Any]
    ) -> Prediction:
        """
        Submit one prediction: one POST, never re-sent once it may have arrived.

        Raises:
            SubmissionUnknownError: sent, and no usable answer came (none, a
                5xx, or one that does not read as a prediction): it may exist.
            APIError: refused (429/503 only after the allowed retries).
        """
        path = wire.submit_path(kind)
        body = wire.build_submit_body(model, params)
        window: list[float] = []
        outer = send_hook()

        async def sending(after: float, before: float) -> None:
            # The first attempt's start and the last one's end: what
            # `AtlasClient.reconcile` looks for in the history.
            if window:
                window[1] = before
            else:
                window.extend((after, before))
            if outer is not None:
                await outer(after, before)

        try:
            with on_send(sending):
                answer = await self._session.request(
                    "POST",
                    path,
                    json=body,
                    retry=RetryMode.SUBMIT,
                    kind=kind,
                    model=model,
                    purpose=RequestKind.SUBMIT,
                )
            try:
                prediction = wire.read_submit(answer, now=self._clock.wall())
            except Exception as exc:
                # The server took the request and answered something that names
                # no prediction (no id, not JSON, cut off): it may exist and bill.
                raise self._session.unusable_submit(
                    exc, path, kind=kind, model=model
                ) from exc
        except SubmissionUnknownError as exc:
            exc.request_body = body
            if window:
                exc.sent_after, exc.sent_before = window
            raise
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "submitted prediction %s (%s, %s)",
                prediction.id,
                kind.value,
                model,
                extra={"prediction_id": prediction.id},
            )
        return prediction

    async def fetch(
        self, prediction_id: str, memo: PollMemo | None = None
    ) -> Prediction:
        """
        One poll: one GET, no retry (the scheduler decides when to try again).

        Most polls of a running prediction get the very bytes of the poll
        before; with a ``memo`` such an answer costs no decoding at all: the
        snapshot it gave last time is returned as is.
        """
        latest = memo.latest if memo is not None else None
        answer = await self._session.poll(
            wire.prediction_path(prediction_id),
            prediction_id,
            memo.seen if memo is not None and latest is not None else 0,
        )
        if answer.unchanged and latest is not None:
            return latest
        prediction = wire.read_prediction(
            answer, now=self._clock.wall(), prediction_id=prediction_id
        )
        if memo is not None:
            memo.seen = answer.fingerprint
        return prediction

    async def get(self, prediction_id: str) -> Prediction:
        """One GET, retried on network errors, 429 and 5xx."""
        return await self._get(prediction_id, RetryMode.IDEMPOTENT)

    async def _get(self, prediction_id: str, retry: RetryMode) -> Prediction:
        answer = await self._session.request(
            "GET",
            wire.prediction_path(prediction_id),
            retry=retry,
            prediction_id=prediction_id,
            purpose=RequestKind.POLL,
        )
        return wire.read_prediction(
            answer, now=self._clock.wall(), prediction_id=prediction_id
        )

    async def upload(self, file: FileInput, filename: str | None) -> UploadedMedia:
        """Upload one file as multipart ``file``; return where it lives now."""
        data, upload_name, content_type = await read_upload(file, filename)
        answer = await self._session.request(
            "POST",
            wire.UPLOAD_PATH,
            files={"file": (upload_name, data, content_type)},
            # A repeated upload only leaves a second temporary file behind.
            retry=RetryMode.IDEMPOTENT,
            purpose=RequestKind.UPLOAD,
        )
        media = wire.read_upload(answer, now=self._clock.wall())
        return attrs.evolve(
            media,
            filename=media.filename or upload_name,
            size=media.size if media.size is not None else len(data),
            content_type=media.content_type or content_type,
        )

    async def history_page(
        self, page: int, size: int, model: str | None, status: str | None
    ) -> HistoryPage:
        """One page of the account's history, newest first; retried like a GET."""
        answer = await self._session.request(
            "GET",
            history_path(page, size, model=model, status=status),
            retry=RetryMode.IDEMPOTENT,
        )
        return read_history_page(answer, now=self._clock.wall())

    async def list_models(self) -> list[ModelInfo]:
        """The model catalog; sends no key."""
        answer = await self._session.request(
            "GET", wire.MODELS_PATH, retry=RetryMode.IDEMPOTENT, auth=False
        )
        return wire.read_models(answer, now=self._clock.wall())

    async def balance(self) -> Balance:
        """The account's balance, from the billing API beside the media API."""
        answer = await self._session.request(
            "GET",
            balance_url(self._session.base_url),
            retry=RetryMode.IDEMPOTENT,
        )
        return read_balance(answer, now=self._clock.wall())

    async def download(
        self,
        prediction: Prediction,
        directory: str | os.PathLike[str],
        **options: Any,
    ) -> list[Path]:
        """Save every output of ``prediction`` into ``directory``."""
        return await download_outputs(
            prediction,
            directory,
            http=self._session.http,
            api_origin=self._session.base_url,
            clock=self._clock,
            rng=self._rng,
            **options,
        )
