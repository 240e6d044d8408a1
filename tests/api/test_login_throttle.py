"""Password checks are throttled atomically: counted before they run, however they interleave
(issue #10 §1, contract section 5)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import argon2
import pytest
from argon2 import PasswordHasher

from domain import passwords

TOKEN = "/api/auth/token/"
WRONG = "wrong-password-guess"


class CountingHasher(PasswordHasher):
    """argon2 with its cheapest profile, counting the verifications it performs."""

    def __init__(self) -> None:
        cheapest = argon2.profiles.CHEAPEST
        super().__init__(
            time_cost=cheapest.time_cost,
            memory_cost=cheapest.memory_cost,
            parallelism=cheapest.parallelism,
            hash_len=cheapest.hash_len,
            salt_len=cheapest.salt_len,
        )
        self.verifications = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> Iterator[CountingHasher]:
    previous = passwords._hasher
    counting = CountingHasher()
    passwords.use_hasher(counting)
    counting.verifications = 0
    yield counting
    passwords.use_hasher(previous)


async def test_concurrent_guesses_get_at_most_five_checks(client, make_user, hasher) -> None:
    user = await make_user()
    credentials = {"username": user["username"], "password": user["password"]}
    for _ in range(6):  # a success frees its reservation: it is no failure
        assert (await client.post(TOKEN, json=credentials)).status_code == 200
    hasher.verifications = 0
    guesses = [WRONG + str(n) for n in range(19)] + [user["password"]]
    random.shuffle(guesses)
    responses = await asyncio.gather(
        *(client.post(TOKEN, json={"username": user["username"], "password": g}) for g in guesses)
    )
    statuses = sorted(r.status_code for r in responses)
    # Five wrong guesses are checked at most; the right one only if it came before the fifth.
    assert statuses.count(401) <= 5 and statuses.count(200) <= 1, statuses
    assert hasher.verifications <= 5 + statuses.count(200), statuses
    assert statuses.count(429) >= 14, statuses
    assert all(s in (200, 401, 429) for s in statuses), statuses
    throttled = next(r for r in responses if r.status_code == 429)
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60


async def test_concurrent_guesses_from_one_address_get_at_most_fifty_checks(client, hasher) -> None:
    responses = await asyncio.gather(
        *(client.post(TOKEN, json={"username": f"nobody{n}", "password": WRONG}) for n in range(60))
    )
    assert hasher.verifications <= 50
    assert sum(r.status_code == 429 for r in responses) >= 10


async def test_current_password_checks_share_the_login_limit(login, hasher) -> None:
    operator = await login("operator")
    path = f"/api/profiles/{operator.user['id']}/"
    new = "another-long-password"
    hasher.verifications = 0  # the login above was one
    responses = await asyncio.gather(
        *(
            operator.patch(path, json={"password": new, "current_password": WRONG + str(n)})
            for n in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert hasher.verifications <= 5, statuses
    assert statuses.count(429) >= 3, statuses
    wrong = next(r for r in responses if r.status_code == 400)
    assert wrong.json() == {"current_password": ["The current password is incorrect."]}
    right = await operator.patch(
        path, json={"password": new, "current_password": operator.user["password"]}
    )
    assert right.status_code == 429
    login_attempt = await operator.post(
        TOKEN, json={"username": operator.user["username"], "password": operator.user["password"]}
    )
    assert login_attempt.status_code == 429
