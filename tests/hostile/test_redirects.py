"""
The API never redirects: any 3xx, whatever its ``Location`` (credentials, a
non-http scheme, no URL at all), is our typed `UnexpectedResponseError`, on
both transports, for a poll and for a submit, and is never followed or retried.
"""

from __future__ import annotations

import httpx
import pytest

from atlas_async import UnexpectedResponseError
from atlas_async._net.transport import AiohttpTransport

from .conftest import IMAGE, KEY, POLL_PATH, SUBMIT_PATH, client_for
from .server import HostileServer, json_answer, raw_answer, redirect_answer

pytestmark = pytest.mark.asyncio

LOCATIONS = {
    "credentials": "http://user:pw@127.0.0.1:PORT/api/v1/model/prediction/p1",
    "credentials-no-host": "http://user:pw@/x",
    "javascript": "javascript:alert(1)",
    "bad-port": "http://127.0.0.1:99999/",
    "bad-ipv6": "http://[::1",
    "other-host": "//evil.test/steal",
    "empty": "",
}


@pytest.mark.parametrize("where", list(LOCATIONS))
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_poll_redirect_is_a_typed_error_never_followed(
    hostile: HostileServer, transport: str, where: str, status: int
) -> None:
    location = LOCATIONS[where].replace("PORT", str(hostile.port))
    hostile.route("GET", POLL_PATH, redirect_answer(location, status=status))
    async with client_for(hostile, transport) as client:
        with pytest.raises(UnexpectedResponseError, match="redirect") as caught:
            await client.get_prediction("p1")
    assert caught.value.status_code == status
    assert len(hostile.connections) == 1
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize("where", ["credentials", "javascript", "bad-ipv6"])
async def test_a_submit_redirect_is_a_typed_error_sent_once(
    hostile: HostileServer, transport: str, where: str
) -> None:
    location = LOCATIONS[where].replace("PORT", str(hostile.port))
    hostile.route("POST", SUBMIT_PATH, redirect_answer(location, status=307))
    async with client_for(hostile, transport) as client:
        with pytest.raises(UnexpectedResponseError, match="redirect"):
            await client.submit("image", IMAGE, prompt="a fox")
    assert len(hostile.requests("POST")) == 1


async def test_the_aiohttp_transport_raises_httpx_errors_for_a_url_with_credentials(
    hostile: HostileServer,
) -> None:
    """aiohttp refuses an Authorization header next to URL credentials with a
    bare ValueError; the transport turns it into an httpx.TransportError that
    every caller (the session, downloads) already handles."""
    hostile.route("GET", "/x", json_answer({}))
    transport = AiohttpTransport(max_connections=1)
    request = httpx.Request(
        "GET",
        f"http://user:pw@127.0.0.1:{hostile.port}/x",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    try:
        with pytest.raises(httpx.TransportError):
            await transport.handle_async_request(request)
    finally:
        await transport.aclose()


async def test_a_location_with_control_characters_is_a_typed_error(
    hostile: HostileServer, transport: str
) -> None:
    hostile.route(
        "GET", POLL_PATH, raw_answer(302, b"", [("Location", "http://a\x7f.test/")])
    )
    async with client_for(hostile, transport) as client:
        with pytest.raises(UnexpectedResponseError, match="redirect"):
            await client.get_prediction("p1")
