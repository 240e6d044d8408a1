"""Bearer tokens for scripts and the CLI: signed JWTs (joserfc, the Authlib project's JOSE
library) whose ids are kept server-side so they can be revoked."""

from __future__ import annotations

import functools
import secrets
import types
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from databases.core import Connection
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from db.statements import bound
from db.tables import auth_tokens, users
from db.uow import UnitOfWork
from domain.actors import Actor, Role

ALGORITHM = "HS256"
DECODED_TOKENS_CACHED = 4096
ISSUER = "bms"


@functools.lru_cache(maxsize=8)
def _key(secret_key: str) -> OctKey:
    return OctKey.import_key(secret_key.encode())


@functools.lru_cache(maxsize=DECODED_TOKENS_CACHED)
def _decode(token: str, secret_key: str) -> Mapping[str, Any] | None:
    """Return the verified claims once per token; expiry and revocation are checked per use."""
    try:
        claims = jwt.decode(token, _key(secret_key), algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError, TypeError):
        return None
    return types.MappingProxyType(claims)  # shared by every caller: read-only


async def _issue(
    uow: UnitOfWork, *, user_id: int, kind: str, ttl_secs: int, secret_key: str, family: str
) -> str:
    jti = secrets.token_hex(16)
    expires_at = uow.now + timedelta(seconds=ttl_secs)
    await uow.conn.execute(
        auth_tokens.insert().values(
            jti=jti,
            user_id=user_id,
            kind=kind,
            expires_at=expires_at,
            created_at=uow.now,
            family=family,
        )
    )
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "jti": jti,
        "typ": kind,
        "iat": int(uow.now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode({"alg": ALGORITHM}, claims, _key(secret_key))


async def issue_token_pair(
    uow: UnitOfWork,
    *,
    user_id: int,
    secret_key: str,
    access_ttl_secs: int,
    refresh_ttl_secs: int,
    family: str | None = None,
) -> dict[str, str]:
    """An access and a refresh token; a new family (a login) unless one is given (a refresh)."""
    family = family or secrets.token_hex(16)
    return {
        "access": await _issue(
            uow,
            user_id=user_id,
            kind="access",
            ttl_secs=access_ttl_secs,
            secret_key=secret_key,
            family=family,
        ),
        "refresh": await _issue(
            uow,
            user_id=user_id,
            kind="refresh",
            ttl_secs=refresh_ttl_secs,
            secret_key=secret_key,
            family=family,
        ),
    }


# Runs on every bearer request: built once, only the values change.
_LIVE_TOKEN_USER = (
    sa.select(users.c.id, users.c.username, users.c.role)
    .select_from(auth_tokens.join(users, users.c.id == auth_tokens.c.user_id))
    .where(
        auth_tokens.c.jti == sa.bindparam("jti"),
        auth_tokens.c.kind == sa.bindparam("kind"),
        auth_tokens.c.revoked_at.is_(None),
        auth_tokens.c.expires_at > sa.bindparam("now"),
        users.c.is_active.is_(True),
    )
)


async def _live_token_user(
    conn: Connection, *, token: str, kind: str, secret_key: str, now: datetime
) -> tuple[Any, Mapping[str, Any]] | None:
    """The user row and claims of a live token of this kind, or None."""
    claims = _decode(token, secret_key)
    if not claims or claims.get("typ") != kind or claims.get("iss") != ISSUER:
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now.timestamp():
        return None
    jti = str(claims.get("jti", ""))
    row = await conn.fetch_one(bound(_LIVE_TOKEN_USER, jti=jti, kind=kind, now=now))
    return (row, claims) if row else None


async def actor_for_access_token(
    conn: Connection, *, token: str, secret_key: str, now: datetime
) -> Actor | None:
    """The active user behind a valid, unrevoked access token, or None."""
    found = await _live_token_user(conn, token=token, kind="access", secret_key=secret_key, now=now)
    if found is None:
        return None
    row, claims = found
    return Actor(
        row["id"],
        row["username"],
        Role(row["role"]),
        "token",
        str(claims["jti"]),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


async def rotate_refresh_token(
    uow: UnitOfWork,
    *,
    refresh_token: str,
    secret_key: str,
    access_ttl_secs: int,
    refresh_ttl_secs: int,
) -> dict[str, str] | None:
    """Retire a live refresh token and return a new pair of its family; None to refuse (401).

    A retired (or revoked) refresh token presented again is a replay: its whole family is
    revoked in this transaction, so the caller must let it commit before answering 401.
    """
    claims = _decode(refresh_token, secret_key)
    if not claims or claims.get("typ") != "refresh" or claims.get("iss") != ISSUER:
        return None
    jti = str(claims.get("jti", ""))
    retired = await uow.conn.fetch_one(
        auth_tokens.update()
        .where(
            auth_tokens.c.jti == jti,
            auth_tokens.c.kind == "refresh",
            auth_tokens.c.revoked_at.is_(None),
            auth_tokens.c.expires_at > uow.now,
        )
        .values(revoked_at=uow.now)
        .returning(auth_tokens.c.user_id, auth_tokens.c.family)
    )
    if retired is None:
        await revoke_family(uow, jti=jti)  # a replay, or simply expired: nothing to lose
        return None
    active = await uow.conn.fetch_val(
        sa.select(users.c.is_active).where(users.c.id == retired["user_id"])
    )
    if not active:
        return None
    return await issue_token_pair(
        uow,
        user_id=retired["user_id"],
        secret_key=secret_key,
        access_ttl_secs=access_ttl_secs,
        refresh_ttl_secs=refresh_ttl_secs,
        family=retired["family"],
    )


async def revoke_family(uow: UnitOfWork, *, jti: str) -> None:
    """Revoke every token issued from the same login as `jti`; close their sockets."""
    family = sa.select(auth_tokens.c.family).where(auth_tokens.c.jti == jti).scalar_subquery()
    ended = await uow.conn.fetch_all(
        auth_tokens.update()
        .where(auth_tokens.c.family == family, auth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=uow.now)
        .returning(auth_tokens.c.jti, auth_tokens.c.user_id)
    )
    for row in ended:
        uow.revoke(row["user_id"], row["jti"])


async def revoke_token(uow: UnitOfWork, *, jti: str) -> None:
    """Revoke one token: once the transaction commits, no process accepts it and sockets
    opened with it close."""
    ended = await uow.conn.fetch_all(
        auth_tokens.update()
        .where(auth_tokens.c.jti == jti, auth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=uow.now)
        .returning(auth_tokens.c.user_id)
    )
    for row in ended:
        uow.revoke(row["user_id"], jti)


async def revoke_user_tokens(uow: UnitOfWork, *, user_id: int) -> None:
    """Revoke every token of a user (password change, deactivation)."""
    await uow.conn.execute(
        auth_tokens.update()
        .where(auth_tokens.c.user_id == user_id, auth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=uow.now)
    )
    await uow.conn.execute(
        users.update().where(users.c.id == user_id).values(credentials_changed_at=uow.now)
    )
    uow.revoke(user_id)


async def delete_expired_tokens(uow: UnitOfWork) -> int:
    """Retention: drop expired tokens; return how many.

    A revoked token stays recorded until it expires, or it would validate again.
    """
    gone = await uow.conn.fetch_all(
        auth_tokens.delete().where(auth_tokens.c.expires_at < uow.now).returning(auth_tokens.c.jti)
    )
    return len(gone)
