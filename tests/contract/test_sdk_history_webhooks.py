"""
The SDK's half for the literals of W7 (the history page) and W13 (the bare
signature header), read through the SDK's history reader and its public
webhook verifier. The emulator's half is `test_emulator_side`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from atlas_async import PredictionStatus
from atlas_async._wire.answer import Answer
from atlas_async._wire.history import read_history_page
from atlas_async.testing import FakeClock
from atlas_async.webhooks import WebhookVerifier

from . import literals as lit

JSON = {"content-type": "application/json"}
# RFC 8037 appendix A's Ed25519 public key (RFC 8032 section 7.1, test 1),
# under its RFC 7638 thumbprint: the key W13's literal is signed with.
JWKS = {
    "keys": [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        }
    ]
}


class TestW7HistoryPage:
    def test_the_literal_page_reads_its_item_time_body_and_status(self) -> None:
        """W7: `code` "200" as text, `createdAt` unix seconds as text,
        `requestBody` the submit's JSON text."""
        page = read_history_page(Answer.read(200, JSON, lit.W7_HISTORY), now=0.0)
        [item] = page.items
        assert item.id == lit.W_ID
        assert item.created_at == datetime(
            2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc
        )
        assert item.body == {
            "model": "google/nano-banana-2/text-to-image",
            "prompt": "a fox",
        }
        assert item.status == "completed"
        assert (page.page, page.size, page.total) == (1, 10, 1)

    def test_a_running_item_without_result_reads(self) -> None:
        body = b'{"code": "200", "data": {"items": [' + lit.W7_HISTORY_RUNNING_ITEM
        body += b'], "pageNo": 1, "pageSize": 10, "total": 1}}'
        [item] = read_history_page(Answer.read(200, JSON, body), now=0.0).items
        assert (item.id, item.status) == (lit.W_ID, "processing")


class TestW13BareSignatureHeader:
    def test_the_literal_delivery_verifies_through_the_bare_header(self) -> None:
        """W13: no -Ed25519 header, the Ed25519 signature in the bare one."""
        verifier = WebhookVerifier(JWKS, clock=FakeClock(wall=1_700_000_000))
        event = verifier.verify(lit.W13_BARE_SIGNATURE_HEADERS, lit.F18_WEBHOOK)
        assert (event.session_id, event.scheme) == ("session-123", "ed25519")
        assert event.prediction.status is PredictionStatus.COMPLETED
        assert json.loads(lit.F18_WEBHOOK)["payload"]["outputs"] == list(
            event.prediction.outputs
        )
