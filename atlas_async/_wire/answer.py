"""
`Answer`: one HTTP answer, its body decoded once.

The session builds it as soon as a body is read; the error check and every
parser then work on the decoded value, so no answer is ever decoded twice.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .errors import Decoded, decode_body

__all__ = ["Answer"]


@attrs.frozen(slots=True)
class Answer:
    """
    A whole answer: status, headers, the body bytes and their one decoding.

    Example::

        answer = Answer.read(200, {"content-type": "application/json"}, b'{"a": 1}')
        assert answer.decoded.value == {"a": 1} and answer.decoded.is_json

    Attributes:
        status_code: the HTTP status.
        headers: the response headers (case-insensitive lookups when the
            session's; any mapping works for the parsers).
        body: the body bytes, as received.
        decoded: the body as JSON when it is JSON, else its text.
        elapsed: seconds the attempt took, on the client's clock.
        error_checked: the session has already classified this answer as no
            error (an error answer never leaves the session), so parsers do not
            classify it again.
    """

    status_code: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    decoded: Decoded = attrs.field(repr=False)
    elapsed: float = 0.0
    error_checked: bool = False

    @classmethod
    def read(
        cls,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        elapsed: float = 0.0,
        error_checked: bool = False,
    ) -> Answer:
        """Decode ``body`` once and keep both forms."""
        decoded = decode_body(body)
        return cls(status_code, headers, body, decoded, elapsed, error_checked)
