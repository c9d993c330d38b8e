"""``GET /model/history``: a key's predictions, newest first, paged and filtered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atlas_async.emulator import EmulatorConfig

from .conftest import Wire, WireFactory

pytestmark = pytest.mark.asyncio

IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
EPOCH = 1_700_000_000.0
CONFIG = EmulatorConfig(
    epoch=EPOCH, model_latency={IMAGE: (4.0, 4.0), VIDEO: (60.0, 60.0)}
)


async def history(wire: Wire, **query: Any) -> dict[str, Any]:
    response = await wire.http.get("/model/history", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "data"}
    assert body["code"] == "200"  # a string on this endpoint, as measured live
    data: dict[str, Any] = body["data"]
    return data


async def raw_submit(wire: Wire, text: str, path: str = "/model/generateImage") -> str:
    response = await wire.http.post(
        path, content=text.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


async def test_items_are_newest_first_with_the_exact_request_body(
    wire_factory: WireFactory,
) -> None:
    """Each item holds ID, createdAt (unix seconds as text), model, status and
    requestBody, the submit's JSON text byte for byte; newest first."""
    first_text = '{ "model" : "' + IMAGE + '",  "prompt": "a fox" }'
    second_text = '{"prompt":"a wave","model":"' + VIDEO + '","duration":5}'
    async with wire_factory(CONFIG) as wire:
        first = await raw_submit(wire, first_text)
        wire.clock.advance(2.0)
        second = await raw_submit(wire, second_text, "/model/generateVideo")
        data = await history(wire)
    assert (data["pageNo"], data["pageSize"], data["total"]) == (1, 10, 2)
    newest, oldest = data["items"]
    assert newest == {
        "ID": second,
        "createdAt": "1700000002",
        "model": VIDEO,
        "requestBody": second_text,
        "status": "processing",
    }
    assert oldest["ID"] == first
    assert oldest["createdAt"] == "1700000000"
    assert oldest["requestBody"] == first_text
    assert json.loads(oldest["requestBody"]) == {"model": IMAGE, "prompt": "a fox"}


async def test_an_ended_prediction_carries_its_result(wire: Wire) -> None:
    """Once a prediction ends, its item has ``result``: the poll answer's data."""
    prediction_id = await wire.submit(model=IMAGE, prompt="a fox")
    assert "result" not in (await history(wire))["items"][0]
    wire.clock.advance(600.0)
    [item] = (await history(wire))["items"]
    assert item["status"] == "completed"
    assert item["result"] == await wire.poll(prediction_id)


async def test_pages_split_the_matches_and_total_counts_them_all(
    wire: Wire,
) -> None:
    """``no`` and ``size`` pick a page; ``total`` counts every match."""
    ids = [await wire.submit(model=IMAGE, prompt=f"p{i}") for i in range(5)]
    newest_first = ids[::-1]
    page_2 = await history(wire, no=2, size=2)
    assert (page_2["pageNo"], page_2["pageSize"], page_2["total"]) == (2, 2, 5)
    assert [item["ID"] for item in page_2["items"]] == newest_first[2:4]
    page_3 = await history(wire, no=3, size=2)
    assert [item["ID"] for item in page_3["items"]] == newest_first[4:]
    beyond = await history(wire, no=9, size=2)
    assert (beyond["items"], beyond["total"]) == ([], 5)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"no": "x", "size": "y"}, id="not-numbers"),
        pytest.param({"no": "0", "size": "-3"}, id="below-one"),
        pytest.param({"page": "2", "pageSize": "1"}, id="other-names"),
    ],
)
async def test_unreadable_paging_falls_back_to_the_defaults(
    wire: Wire, query: dict[str, str]
) -> None:
    """Like the service, the emulator answers bad paging with page 1 of 10."""
    await wire.submit(model=IMAGE, prompt="a fox")
    data = await history(wire, **query)
    assert (data["pageNo"], data["pageSize"], data["total"]) == (1, 10, 1)
    assert len(data["items"]) == 1


async def test_page_size_is_capped(wire: Wire) -> None:
    """A huge ``size`` is cut to 100."""
    assert (await history(wire, size=100000))["pageSize"] == 100


async def test_filters_select_by_id_model_family_status_and_state(
    wire_factory: WireFactory,
) -> None:
    """sessionID, model, modelPrefix, status and state each narrow the list."""
    async with wire_factory(CONFIG) as wire:
        image = await wire.submit(model=IMAGE, prompt="a fox")
        failed = await wire.submit(model=IMAGE, prompt="[emulator:fail] a fox")
        video = await wire.submit("/model/generateVideo", model=VIDEO, prompt="a wave")
        wire.clock.advance(10.0)  # the images have ended, the video has not

        async def ids(**query: str) -> list[str]:
            return [item["ID"] for item in (await history(wire, **query))["items"]]

        assert await ids(sessionID=failed) == [failed]
        assert await ids(model=IMAGE) == [failed, image]
        assert await ids(model="google/nano-banana-2") == []
        assert await ids(modelPrefix="bytedance/") == [video]
        assert await ids(status="completed") == [image]
        assert await ids(status="failed") == [failed]
        assert await ids(status="processing") == [video]
        assert await ids(state="running") == [video]
        assert await ids(state="succeeded") == [image]
        assert await ids(state="failed") == [failed]
        assert await ids(state="sideways") == []
        assert await ids(model=IMAGE, status="completed") == [image]


async def test_each_key_sees_only_its_own_predictions(
    wire_factory: WireFactory,
) -> None:
    """History is per account: another key's predictions are not listed."""
    async with wire_factory() as wire:
        mine = await wire.submit(model=IMAGE, prompt="a fox")
        other = await wire.http.post(
            "/model/generateImage",
            json={"model": IMAGE, "prompt": "b"},
            headers={"Authorization": "Bearer someone-else"},
        )
        assert other.status_code == 200
        data = await history(wire)
        theirs = await wire.http.get(
            "/model/history", headers={"Authorization": "Bearer someone-else"}
        )
    assert [item["ID"] for item in data["items"]] == [mine]
    assert [i["ID"] for i in theirs.json()["data"]["items"]] == [
        other.json()["data"]["id"]
    ]


async def test_tracking_params_are_ignored(wire: Wire) -> None:
    """``utm_*`` query parameters change nothing."""
    await wire.submit(model=IMAGE, prompt="a fox")
    plain = await history(wire)
    tracked = await history(
        wire, utm_source="github", utm_medium="readme", utm_campaign="comfyui"
    )
    assert tracked == plain


async def test_history_needs_a_key_and_a_get(wire: Wire) -> None:
    """No key is 401, as everywhere; a POST is 405."""
    anonymous = await wire.http.get("/model/history", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert (await wire.http.post("/model/history")).status_code == 405
