"""Read-your-writes with a read replica (DATABASE_READ_URL): the client's last write, in a cookie.

After a request commits a write, its response sets `bms_read_after`: the write's WAL
position, an expiry and an HMAC under the secret key. While it lasts, the client's list and
detail reads (db.store.Store.read_connection) go to the replica only once the replica has
replayed that position, else to the primary. A cookie that is missing, expired, forged or
malformed is ignored: reads go to the replica. Installed only when DATABASE_READ_URL is
set; without it nothing here runs.
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.store import ClientWrites, Store, client_writes

READ_AFTER_COOKIE = "bms_read_after"


def _signature(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()[:32]


class ReadYourWritesMiddleware:
    """Give each HTTP request the WAL position its reads must see; set it after a write."""

    def __init__(
        self, app: ASGIApp, *, store: Store, secret_key: str, window_secs: int, secure: bool
    ) -> None:
        self.app = app
        self.store = store
        self.secret = hashlib.sha256(b"bms-read-after:" + secret_key.encode()).digest()
        self.window_secs = window_secs
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = ClientWrites(read_after=self._read_after(scope))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and client.wrote_at is not None:
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", self._cookie(client.wrote_at).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with client_writes(client):
            await self.app(scope, receive, send_with_cookie)

    def _now(self) -> int:
        return int(self.store.clock().timestamp())

    def _cookie(self, position: int) -> str:
        expires = self._now() + self.window_secs
        payload = f"{position}.{expires}"
        value = f"{payload}.{_signature(self.secret, payload)}"
        cookie = (
            f"{READ_AFTER_COOKIE}={value}; Max-Age={self.window_secs}; Path=/; "
            "HttpOnly; SameSite=Lax"
        )
        return cookie + "; Secure" if self.secure else cookie

    def _read_after(self, scope: Scope) -> int | None:
        """The WAL position of the client's cookie, if it is genuine and current."""
        raw = b"; ".join(value for name, value in scope["headers"] if name == b"cookie")
        if READ_AFTER_COOKIE.encode() not in raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw.decode("latin-1"))
        except Exception:  # a malformed header: as if absent
            return None
        morsel = jar.get(READ_AFTER_COOKIE)
        if morsel is None:
            return None
        position, _, rest = morsel.value.partition(".")
        expires, _, signature = rest.partition(".")
        expected = _signature(self.secret, f"{position}.{expires}")
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        try:
            if int(expires) < self._now():
                return None
            return int(position)
        except ValueError:
            return None
