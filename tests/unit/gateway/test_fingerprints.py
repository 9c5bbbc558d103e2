"""Sessions bound to the client that made them: a token used from another
network or browser is refused (strict) or logged and counted (lenient)."""

import logging

import pytest

from builders import InProcess
from supportdesk_gateway.fingerprints import Fingerprints
from supportdesk_gateway.limits import ClientAddress

PHONE = {"User-Agent": "Mozilla/5.0 (iPhone) Safari/605"}
LAPTOP = {"User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/140"}


async def session_as(system: InProcess, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    created = (await system.http.post("/api/v1/sessions", json={}, headers=headers)).json()
    return created["session_id"], {"Authorization": f"Bearer {created['token']}"}


@pytest.mark.parametrize("gateway_overrides", [{"fingerprint_mode": "strict"}])
async def test_strict_refuses_the_token_from_another_client(system: InProcess) -> None:
    sid, auth = await session_as(system, PHONE)
    assert (await system.http.get(f"/api/v1/sessions/{sid}", headers={**auth, **PHONE})).status_code == 200
    stolen = await system.http.get(f"/api/v1/sessions/{sid}", headers={**auth, **LAPTOP})
    assert stolen.status_code == 403
    assert "bound to another client" in stolen.json()["detail"]


@pytest.mark.parametrize("gateway_overrides", [{"fingerprint_mode": "lenient"}])
async def test_lenient_logs_and_counts_but_serves(system: InProcess, caplog: pytest.LogCaptureFixture) -> None:
    sid, auth = await session_as(system, PHONE)
    with caplog.at_level(logging.WARNING, logger="supportdesk_gateway.fingerprints"):
        response = await system.http.get(f"/api/v1/sessions/{sid}", headers={**auth, **LAPTOP})
    assert response.status_code == 200
    assert [r.getMessage() for r in caplog.records] == ["client fingerprint mismatch"]
    metrics = (await system.http.get("/metrics")).text
    assert 'supportdesk_gateway_fingerprint_mismatches_total{mode="lenient"} 1.0' in metrics


def test_the_network_part_tolerates_a_phone_moving_within_its_carrier() -> None:
    class Count:
        def labels(self, *_: str) -> "Count":
            return self

    prints = Fingerprints("strict", ClientAddress([]), Count(), ipv4_prefix=24, ipv6_prefix=48)  # type: ignore[arg-type]

    def scope(address: str) -> dict[str, object]:
        return {"type": "http", "client": (address, 1), "headers": [(b"user-agent", b"Phone")]}

    assert prints.of(scope("203.0.113.7")) == prints.of(scope("203.0.113.200"))
    assert prints.of(scope("203.0.113.7")) != prints.of(scope("198.51.100.7"))
    assert prints.of(scope("2001:db8:1:2::1")) == prints.of(scope("2001:db8:1:ffff::9"))
    assert Fingerprints("off", ClientAddress([]), Count()).of(scope("203.0.113.7")) is None  # type: ignore[arg-type]
