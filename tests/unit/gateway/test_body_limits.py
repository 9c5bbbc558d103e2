"""Bodies are counted while they arrive and refused past their limit, before
anything (authentication included) makes the gateway hold them. Before this,
a 200 MB JSON body was read whole before the token check, and an anonymous
30 MB upload was parsed before its 401."""

from collections.abc import AsyncIterator

from builders import InProcess

MIB = 1024 * 1024


class Body:
    """A request body streamed in 1 MiB chunks that counts how many the
    server pulled: a server that stops reading stops the stream."""

    def __init__(self, mib: int, head: bytes = b"") -> None:
        self.mib = mib
        self.head = head
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        for _ in range(self.mib):
            self.sent += 1
            yield b" " * MIB


async def session(system: InProcess) -> tuple[str, dict[str, str]]:
    created = (await system.http.post("/api/v1/sessions", json={})).json()
    return created["session_id"], {"Authorization": f"Bearer {created['token']}"}


async def test_a_huge_json_body_is_refused_after_the_limit_not_read_whole(system: InProcess) -> None:
    sid, _ = await session(system)
    body = Body(200, b'{"content": "')
    response = await system.http.post(
        f"/api/v1/sessions/{sid}/messages", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "65536 bytes" in response.json()["detail"]
    assert body.sent <= 1, f"the gateway read {body.sent} MiB of a body it had to refuse"


async def test_a_declared_length_over_the_limit_is_refused_before_reading(system: InProcess) -> None:
    sid, auth = await session(system)
    body = Body(5)
    headers = {**auth, "Content-Type": "application/json", "Content-Length": str(5 * MIB)}
    response = await system.http.post(f"/api/v1/sessions/{sid}/messages", content=body, headers=headers)
    assert response.status_code == 413
    assert body.sent == 0


async def test_an_anonymous_upload_is_refused_before_its_body_is_read(system: InProcess) -> None:
    body = Body(30, b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n')
    response = await system.http.post(
        "/api/v1/documents", content=body, headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 401
    assert body.sent == 0


async def test_an_admin_upload_over_the_limit_is_refused_with_a_reason(system: InProcess) -> None:
    limit = system.gateway.context.settings.max_upload_bytes
    admin = {"Authorization": f"Bearer {system.gateway.context.settings.admin_api_key.get_secret_value()}"}
    files = {"file": ("big.txt", b"x" * (limit + 1), "text/plain")}
    response = await system.http.post("/api/v1/documents", files=files, headers=admin)
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]


async def test_a_normal_upload_still_works(system: InProcess) -> None:
    admin = {"Authorization": f"Bearer {system.gateway.context.settings.admin_api_key.get_secret_value()}"}
    files = {"file": ("faq.txt", b"Returns are free within 30 days.", "text/plain")}
    response = await system.http.post("/api/v1/documents", files=files, headers=admin)
    assert response.status_code == 202, response.text
    missing = await system.http.post("/api/v1/documents", data={"other": "x"}, headers=admin)
    assert missing.status_code == 422
    assert "`file`" in missing.json()["detail"]


async def test_a_declared_length_over_the_limit_gets_the_json_problem_on_every_route(system: InProcess) -> None:
    sid, auth = await session(system)
    admin = {"Authorization": f"Bearer {system.gateway.context.settings.admin_api_key.get_secret_value()}"}
    routes = [(f"/api/v1/sessions/{sid}/messages", auth), (f"/api/v1/sessions/{sid}/agent-messages", admin)]
    for path, headers in routes:
        body = b'{"content": "' + b"x" * 70_000 + b'"}'
        response = await system.http.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 413, path
        assert response.headers["content-type"] == "application/json", path
        assert "65536 bytes" in response.json()["detail"], path
        assert response.headers["x-request-id"]
