"""Password hashing (argon2) and the password policy of the contract."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.offload import run_cpu

MIN_PASSWORD_CHARS = 10

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-real-password-dummy")


def use_hasher(hasher: PasswordHasher) -> None:
    """Swap the hasher (the test suite uses argon2's cheapest profile to stay fast)."""
    global _hasher, _DUMMY_HASH
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("not-a-real-password-dummy")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password in constant-ish time, also when there is no such user."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_password_off_loop(password: str) -> str:
    """Hash on the CPU pool (argon2 takes ~0.1 s of CPU by design)."""
    return await run_cpu(hash_password, password, pool="passwords")


async def verify_password_off_loop(password_hash: str | None, password: str) -> bool:
    """Verify on the CPU pool, so other requests and sockets keep being served meanwhile."""
    return await run_cpu(verify_password, password_hash, password, pool="passwords")


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problems(password: str, *, username: str) -> list[str]:
    """Return the policy violations of a new password (empty when acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_CHARS:
        problems.append(
            f"This password is too short. It must contain at least {MIN_PASSWORD_CHARS} characters."
        )
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if username and password.casefold() == username.casefold():
        problems.append("The password is too similar to the username.")
    return problems
