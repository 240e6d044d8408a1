"""What each fast path (FAST_PATHS=1) relies on in other libraries' private APIs, checked.

After a dependency upgrade a fast path can break loudly (an AttributeError under load)
or, worse, turn itself off silently (realtime/fastsend.py falls back to ASGI `send`).
Each test names the module to adapt; meanwhile FAST_PATHS=0 runs the plain path, which
uses public APIs only (docs/fast-paths.md).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Iterable
from importlib.metadata import version
from typing import Any

import sqlalchemy as sa
import uvicorn

PLAIN = "meanwhile FAST_PATHS=0 runs the public-API path"


def _missing(owner: Any, names: Iterable[str]) -> list[str]:
    return [name for name in names if not hasattr(owner, name)]


def _require(module: str, package: str, owner: Any, names: Iterable[str]) -> None:
    missing = _missing(owner, names)
    label = getattr(owner, "__qualname__", type(owner).__qualname__)
    assert not missing, (
        f"{module} relies on {package} {version(package)}'s {label}.{', '.join(missing)}, "
        f"which is gone: adapt {module} ({PLAIN})"
    )


def test_db_compiled_cache_sqlalchemy_compiler() -> None:
    """db/compiled_cache.py: cache keys, extracted parameters, the compiler's result map."""
    from sqlalchemy.dialects import postgresql

    query = sa.select(sa.column("a", sa.Integer)).where(sa.column("b", sa.String) == "x")
    key = query._generate_cache_key()
    assert key is not None and hasattr(key, "key") and hasattr(key, "bindparams"), (
        f"db/compiled_cache.py: SQLAlchemy {version('sqlalchemy')} cache keys changed; {PLAIN}"
    )
    compiled: Any = query.compile(dialect=postgresql.dialect(), cache_key=key)
    _require(
        "db/compiled_cache.py",
        "sqlalchemy",
        compiled,
        [
            "_result_columns",
            "_bind_processors",
            "_ordered_columns",
            "_textual_ordered_columns",
            "_ad_hoc_textual",
            "_loose_column_name_matching",
            "post_compile_params",
            "literal_execute_params",
            "positiontup",
        ],
    )
    params = compiled.construct_params(None, extracted_parameters=key.bindparams)
    assert list(params.values()) == ["x"], "db/compiled_cache.py: construct_params changed"
    _require("db/compiled_cache.py", "sqlalchemy", sa.Integer(), ["_cached_result_processor"])


def test_db_compiled_cache_databases_backends() -> None:
    """db/compiled_cache.py: `databases`' connection internals and its Record."""
    from databases.backends.common import records
    from databases.backends.postgres import PostgresBackend, PostgresConnection
    from databases.backends.sqlite import CompilationContext, SQLiteBackend, SQLiteConnection

    module = "db/compiled_cache.py"
    _require(module, "databases", PostgresConnection, ["_compile", "fetch_all", "fetch_one"])
    _require(module, "databases", SQLiteConnection, ["_compile"])
    _require(module, "databases", records, ["Record", "create_column_maps"])
    assert CompilationContext is not None
    record_args = list(inspect.signature(records.Record.__init__).parameters)
    assert record_args == ["self", "row", "result_columns", "dialect", "column_maps"], (
        f"{module}: databases' Record takes {record_args} now; {PLAIN}"
    )
    postgres = PostgresBackend("postgresql://u@127.0.0.1/db")
    sqlite = SQLiteBackend("sqlite:///:memory:")
    _require(module, "databases", postgres, ["_dialect"])
    _require(module, "databases", sqlite, ["_dialect", "_pool"])
    connection = PostgresConnection(postgres, postgres._dialect)
    _require(module, "databases", connection, ["_connection", "_dialect"])


def test_realtime_eager_asyncio_future_protocol() -> None:
    """realtime/eager.py: a Task's handshake with the futures its coroutine yields."""
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()

        async def waits() -> None:
            await future

        coro = waits()
        yielded = coro.send(None)
        coro.close()
    finally:
        loop.close()
    assert yielded is future and hasattr(yielded, "_asyncio_future_blocking"), (
        f"realtime/eager.py: asyncio no longer yields the awaited future with "
        f"_asyncio_future_blocking; {PLAIN}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_realtime_uvicorn_socket_takes_the_fast_paths() -> None:
    """realtime/uvproto.py and realtime/fastsend.py, on a real uvicorn socket.

    The socket must run our lean protocol (its Inbox and Flag in place, the handshake
    request freed), and its ASGI `send` must lead fastsend to the transport; otherwise
    the fast path silently falls back to ASGI `send` for every frame.
    """
    from websockets.asyncio.client import connect

    from realtime import fastsend
    from realtime.uvproto import Flag, Inbox, LeanWebSocketsProtocol

    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        proto = getattr(send, "__self__", None)
        seen["protocol"] = type(proto)
        seen["inbox"] = type(getattr(proto, "queue", None))
        seen["flag"] = type(getattr(proto, "writable", None))
        seen["request"] = getattr(proto, "request", "missing")
        raw = fastsend.raw_protocol(send)
        seen["raw"] = raw is not None
        seen["wrote"] = raw is not None and fastsend.try_write(raw, fastsend.text_frame(b"hi"))
        if not seen["wrote"]:
            await send({"type": "websocket.send", "text": "hi"})
        await receive()  # websocket.disconnect

    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=LeanWebSocketsProtocol,
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.01)  # uvicorn offers no event for "listening"
            async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                assert await ws.recv() == "hi"
    finally:
        server.should_exit = True
        await serving
    uvi = f"uvicorn {version('uvicorn')}"
    assert seen["protocol"] is LeanWebSocketsProtocol, (
        f"realtime/uvproto.py: {uvi} no longer hands the protocol's bound `send` to the app; "
        f"{PLAIN}"
    )
    assert (seen["inbox"], seen["flag"]) == (Inbox, Flag), (
        f"realtime/uvproto.py: {uvi} replaced the queue/writable our protocol swaps; {PLAIN}"
    )
    assert seen["request"] is None, (
        f"realtime/uvproto.py: {uvi} no longer calls start_keepalive after the handshake; {PLAIN}"
    )
    assert seen["raw"] and seen["wrote"], (
        f"realtime/fastsend.py: {uvi}'s protocol lost transport/conn/writable/close_sent/"
        f"disconnected; every frame now goes through ASGI send; {PLAIN}"
    )


def test_tasks_broker_taskiq_redis_internals() -> None:
    """tasks/broker.py: the taskiq-redis broker and result backend members it overrides/reads."""
    from taskiq import InMemoryBroker
    from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

    module = "tasks/broker.py"
    broker = RedisStreamBroker("redis://127.0.0.1:1/0")
    _require(
        module,
        "taskiq-redis",
        broker,
        [
            "_ack_generator",
            "_declare_consumer_group",
            "connection_pool",
            "queue_name",
            "consumer_group_name",
            "consumer_name",
            "block",
            "count",
            "idle_timeout",
            "unacknowledged_batch_size",
            "maxlen",
            "approximate",
        ],
    )
    ack_args = list(inspect.signature(broker._ack_generator).parameters)
    assert ack_args == ["id", "queue_name"], f"{module}: _ack_generator takes {ack_args} now"
    results = RedisAsyncResultBackend("redis://127.0.0.1:1/0")
    _require(module, "taskiq-redis", results, ["redis_pool", "_task_name", "serializer"])
    _require(module, "taskiq", InMemoryBroker(), ["_running_tasks"])
