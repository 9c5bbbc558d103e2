"""Request ids, the one error shape for the unforeseen, and CORS by setting."""

import re

import httpx
import pytest

from builders import InProcess

SHOP = "https://shop.example"


async def test_every_response_carries_a_request_id(system: InProcess) -> None:
    generated = await system.http.get("/api/v1/info")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    given = await system.http.get("/api/v1/info", headers={"X-Request-ID": "lb-7f3a.42"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.42"
    # Echoed into headers and logs: anything odd is replaced, not repeated.
    odd = await system.http.get("/api/v1/info", headers={"X-Request-ID": "x" * 200})
    assert odd.headers["X-Request-ID"] != "x" * 200
    refused = await system.http.post("/api/v1/sessions", content=b"{" + b" " * 70_000 + b"}")
    assert refused.status_code == 413
    assert "X-Request-ID" in refused.headers


async def test_an_unexpected_error_is_json_with_the_request_id_not_a_trace(
    system: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = (await system.http.post("/api/v1/sessions", json={})).json()

    async def broken(*_: object) -> list[object]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(system.gateway.context.sessions, "history", broken)
    transport = httpx.ASGITransport(app=system.gateway.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get(
            f"/api/v1/sessions/{created['session_id']}/messages",
            headers={"Authorization": f"Bearer {created['token']}", "X-Request-ID": "req-1"},
        )
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error; quote the request id when reporting it",
        "request_id": "req-1",
    }
    assert response.headers["X-Request-ID"] == "req-1"
    assert "ZeroDivisionError" not in response.text


async def test_no_cross_origin_access_by_default(system: InProcess) -> None:
    preflight = await system.http.options(
        "/api/v1/sessions", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("gateway_overrides", [{"cors_allow_origins": SHOP}])
async def test_cors_allows_exactly_the_configured_origins(system: InProcess) -> None:
    allowed = await system.http.options(
        "/api/v1/sessions", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.headers["access-control-allow-origin"] == SHOP
    other = await system.http.get("/api/v1/info", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
