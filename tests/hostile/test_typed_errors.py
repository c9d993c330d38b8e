"""
Nothing but an `AtlasError` leaves a request: whatever an HTTP library raises
(its own bug included) is a `TransportError`, or `SubmissionUnknownError` for a
submit that may have gone out; an injected client's redirect is still ours.
"""

from __future__ import annotations

import httpx
import pytest

from atlas_async import (
    AtlasClient,
    SubmissionUnknownError,
    TransportError,
    UnexpectedResponseError,
)

from .conftest import IMAGE, KEY, POLL_PATH, SUBMIT_PATH
from .server import HostileServer, redirect_answer

pytestmark = pytest.mark.asyncio


class Broken(httpx.AsyncBaseTransport):
    """A transport with a bug: it raises what no transport should."""

    def __init__(self, bug: Exception) -> None:
        self.bug = bug
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.bug


BUGS = [KeyError("k"), ValueError("v"), AttributeError("a"), RecursionError("r")]


@pytest.mark.parametrize("bug", BUGS, ids=lambda bug: type(bug).__name__)
async def test_a_transport_bug_on_a_get_is_a_transport_error(bug: Exception) -> None:
    transport = Broken(bug)
    async with AtlasClient(KEY, transport=transport, max_retries=2) as client:
        with pytest.raises(TransportError) as caught:
            await client.get_prediction("p1")
    assert caught.value.__cause__ is bug
    assert transport.calls == 1  # a bug is no network hiccup: not retried


@pytest.mark.parametrize("bug", BUGS, ids=lambda bug: type(bug).__name__)
async def test_a_transport_bug_on_a_submit_is_unknown(bug: Exception) -> None:
    """Nothing proves the submit did not leave: unknown, sent once."""
    transport = Broken(bug)
    async with AtlasClient(KEY, transport=transport) as client:
        with pytest.raises(SubmissionUnknownError) as caught:
            await client.submit("image", IMAGE, prompt="a fox")
    assert caught.value.__cause__ is bug
    assert transport.calls == 1


@pytest.mark.parametrize(
    "location", ["javascript:alert(1)", "http://[::1", "http://127.0.0.1:99999/"]
)
@pytest.mark.parametrize("path", [POLL_PATH, SUBMIT_PATH])
async def test_an_injected_clients_redirect_is_ours_too(
    hostile: HostileServer, location: str, path: str
) -> None:
    """With the user's own httpx client (which the SDK never changes) httpx
    reads Location itself; its refusal still becomes UnexpectedResponseError."""
    method = "POST" if path == SUBMIT_PATH else "GET"
    hostile.route(method, path, redirect_answer(location))
    async with (
        httpx.AsyncClient() as http,
        AtlasClient(KEY, base_url=hostile.base_url, http_client=http) as client,
    ):
        call = (
            client.get_prediction("p1")
            if method == "GET"
            else client.submit("image", IMAGE, prompt="a fox")
        )
        with pytest.raises(UnexpectedResponseError, match="redirect"):
            await call
    assert len(hostile.connections) == 1
