"""Attaching a file to a conversation through the gateway: the session's own
token only, the same file rules as documents, a bounded number per
conversation, and clear errors for everything else."""

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from builders import InProcess

SLIP = ("slip.md", b"Order 7731 held a teal kayak paddle.", "text/markdown")
ONE_SMALL = pytest.mark.parametrize("gateway_overrides", [{"attachments_per_session": 1, "max_upload_bytes": 64}])


async def new_session(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    created = (await http.post("/api/v1/sessions", json={})).json()
    return created["session_id"], {"Authorization": f"Bearer {created['token']}"}


async def test_attached_listed_and_read_by_its_session(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    path = f"/api/v1/sessions/{sid}/attachments"
    response = await system.http.post(path, files={"file": SLIP}, headers=auth)
    assert response.status_code == 202, response.text
    attachment = response.json()
    assert (attachment["filename"], attachment["status"], attachment["size"]) == ("slip.md", "queued", len(SLIP[1]))
    assert (await system.http.get(path, headers=auth)).json() == [attachment]
    assert (await system.http.get(f"{path}/{attachment['attachment_id']}", headers=auth)).json() == attachment


async def test_only_the_sessions_token_opens_its_attachments(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    _, other = await new_session(system.http)
    path = f"/api/v1/sessions/{sid}/attachments"
    assert (await system.http.post(path, files={"file": SLIP})).status_code == 401
    assert (await system.http.post(path, files={"file": SLIP}, headers=other)).status_code == 403
    assert (await system.http.get(path, headers=other)).status_code == 403
    assert (await system.http.get(path, headers=auth)).json() == []


@ONE_SMALL
async def test_bad_files_get_clear_errors(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    path = f"/api/v1/sessions/{sid}/attachments"
    cases = [
        ({"file": ("slip.exe", b"MZ", "application/octet-stream")}, 415, "supported file types"),
        ({"file": ("slip.txt", b"x" * 65, "text/plain")}, 413, "limited to 64 bytes"),
        ({"file": ("slip.txt", b"", "text/plain")}, 422, "empty"),
        ({"other": ("slip.txt", b"x", "text/plain")}, 422, "`file` is required"),
    ]
    for files, code, reason in cases:
        response = await system.http.post(path, files=files, headers=auth)
        assert (response.status_code, reason in response.json()["detail"]) == (code, True), response.text
    assert (
        await system.http.post(path, files={"file": ("a.txt", b"a", "text/plain")}, headers=auth)
    ).status_code == 202
    full = await system.http.post(path, files={"file": ("b.txt", b"b", "text/plain")}, headers=auth)
    assert full.status_code == 409
    assert "at most 1 attachments" in full.json()["detail"]
    assert len((await system.http.get(path, headers=auth)).json()) == 1


async def test_an_unknown_attachment_or_another_field_is_not_found(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    path = f"/api/v1/sessions/{sid}/attachments"
    attachment = (await system.http.post(path, files={"file": SLIP}, headers=auth)).json()
    for name in ("0b0f4c1e-57a2-4bb9-9d55-3f1e6f0f2a90", f"{attachment['attachment_id']}:blob", "x"):
        assert (await system.http.get(f"{path}/{name}", headers=auth)).status_code == 404


@pytest.mark.parametrize("gateway_overrides", [{"attachments_per_session": 0}])
async def test_no_attachments_when_turned_off(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    response = await system.http.post(f"/api/v1/sessions/{sid}/attachments", files={"file": SLIP}, headers=auth)
    assert response.status_code == 409
    assert response.json()["detail"] == "this service accepts no attachments"


async def test_an_attachment_that_could_not_be_announced_holds_no_place(
    system: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid, auth = await new_session(system.http)

    async def broker_down(event: object) -> None:
        raise KafkaConnectionError("broker unreachable")

    monkeypatch.setattr(system.gateway.context.events, "attachment_uploaded", broker_down)
    path = f"/api/v1/sessions/{sid}/attachments"
    response = await system.http.post(path, files={"file": SLIP}, headers=auth)
    assert response.status_code == 503, response.text
    assert (await system.http.get(path, headers=auth)).json() == []
