"""Session recovery by user id needs proof (identity verification): anyone
can name someone else's user id, nobody without IDENTITY_SECRET can compute
its user_hash. Each test here is an attack that worked before the fix."""

import hashlib
import hmac

from redis.asyncio import Redis

from builders import IDENTITY_SECRET, InProcess

ALICE = "alice@example.com"


def proof(user_id: str) -> str:
    """What the operator's backend computes for a logged-in user."""
    return hmac.new(IDENTITY_SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()


async def create(system: InProcess, **body: object) -> dict[str, object]:
    response = await system.http.post("/api/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_naming_a_user_id_without_proof_does_not_recover_their_session(system: InProcess) -> None:
    alice = await create(system, user_id=ALICE, user_hash=proof(ALICE))
    attacker = await create(system, user_id=ALICE)
    assert attacker["session_id"] != alice["session_id"]
    assert (attacker["recovered"], attacker["verified"]) == (False, False)


async def test_a_new_chat_without_proof_does_not_repoint_the_users_recovery(system: InProcess) -> None:
    alice = await create(system, user_id=ALICE, user_hash=proof(ALICE))
    await create(system, user_id=ALICE, is_new_chat=True)  # the attacker's session
    again = await create(system, user_id=ALICE, user_hash=proof(ALICE))
    assert again["session_id"] == alice["session_id"]
    assert again["recovered"] is True


async def test_a_wrong_proof_is_refused_with_a_reason(system: InProcess) -> None:
    await create(system, user_id=ALICE, user_hash=proof(ALICE))
    forged = await system.http.post("/api/v1/sessions", json={"user_id": ALICE, "user_hash": proof("mallory")})
    assert forged.status_code == 403
    assert "user_hash" in forged.json()["detail"]


async def test_the_verified_user_gets_their_session_back_with_a_new_token(system: InProcess) -> None:
    first = await create(system, user_id=ALICE, user_hash=proof(ALICE))
    again = await create(system, user_id=ALICE, user_hash=proof(ALICE).upper())  # hex in either case
    assert (again["session_id"], again["recovered"], again["verified"]) == (first["session_id"], True, True)
    assert again["token"] != first["token"]


async def test_the_recovery_index_does_not_reveal_the_user_id(system: InProcess, redis: Redis, unique: str) -> None:
    """A plain SHA-256 of an e-mail address is reversed by hashing a list of
    addresses; the index is keyed with the secret instead."""
    await create(system, user_id=ALICE, user_hash=proof(ALICE))
    keys = [k.decode() for k in await redis.keys(f"{unique}:u:*")]
    assert len(keys) == 1
    assert hashlib.sha256(ALICE.encode()).hexdigest() not in keys[0]
    assert proof(ALICE) not in keys[0]  # nor the user_hash the browser holds


async def test_a_proof_or_user_id_that_is_not_plain_text_is_refused_not_a_crash(system: InProcess) -> None:
    # Found by fuzzing: hmac.compare_digest raised TypeError on a non-ASCII
    # user_hash, and encoding a lone surrogate raised UnicodeEncodeError (500s).
    not_hex = await system.http.post("/api/v1/sessions", json={"user_id": ALICE, "user_hash": "\u0095"})
    assert not_hex.status_code == 403, not_hex.text
    surrogate = await system.http.post(
        "/api/v1/sessions",
        content=b'{"user_id": "\\ud800", "user_hash": "ab"}',
        headers={"content-type": "application/json"},
    )
    assert surrogate.status_code == 422, surrogate.text
    assert "unicode" in surrogate.text.lower()
