"""WebSocket capacity: server memory per idle authenticated connection, and connects/s.

Opens 5,000 and then 10,000 idle, authenticated, subscribed connections to ONE server
process (client load spread over several client processes), measures the server's RSS
growth per connection and the connect rate, then checks that one event still reaches
every connection. Never part of the test run.

    .venv/bin/python bench/ws_connections.py [--steps 5000,10000] [--ws websockets-sansio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ws_common import (
    ClientProc,
    Server,
    create_database,
    drop_database,
    make_user_with_token,
    raise_fd_limit,
    server_env,
)

CLIENT_PROCS = 4
CONNECT_CONCURRENCY = 100


# -- client process ----------------------------------------------------------------------


async def client_main(url: str, token: str, count: int) -> None:
    """Open `count` sockets, report, then report how many got the next event; exit on EOF."""
    from websockets.asyncio.client import connect

    raise_fd_limit()
    sockets = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}"}

    async def open_one() -> None:
        async with gate:
            ws = await connect(url, additional_headers=headers, compression=None, open_timeout=60)
            await ws.recv()  # welcome
            await ws.send('{"type":"subscribe","topics":["locations"]}')
            await ws.recv()  # subscribed
            sockets.append(ws)

    start = time.monotonic()
    results = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
    failed = sum(isinstance(r, BaseException) for r in results)
    print(
        json.dumps({"opened": len(sockets), "failed": failed, "secs": time.monotonic() - start}),
        flush=True,
    )

    async def got_event(ws) -> bool:
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] == "event"
        except Exception:
            return False

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # "expect an event"
    received = sum(await asyncio.gather(*(got_event(ws) for ws in sockets)))
    print(json.dumps({"received": received}), flush=True)
    await reader.readline()  # EOF: done
    for ws in sockets:
        ws.transport.abort()


# -- coordinator -------------------------------------------------------------------------


async def emit_location(url: str) -> None:
    from db.store import Store

    store = Store(url, pool_max=1)
    await store.connect()
    try:
        async with store.unit_of_work(actor_id=None) as uow:
            uow.emit("locations", "updated", object_id=1, data={"id": 1, "name": "ping"})
        await asyncio.sleep(0)
    finally:
        await store.disconnect()


async def coordinator(steps: list[int], ws_impl: str | None) -> None:
    url = await create_database()
    data_dir = Path(f"/tmp/bms-bench-{uuid.uuid4().hex[:8]}")
    server = Server(server_env(url, f"bmsbench:{uuid.uuid4().hex[:8]}", data_dir), ws=ws_impl)
    clients: list[ClientProc] = []
    rows = []
    try:
        token = await make_user_with_token(url, "watcher", "viewer")
        await server.start()
        await asyncio.sleep(1)
        baseline = server.rss_kib()
        total = 0
        for step in steps:
            per_proc = (step - total) // CLIENT_PROCS
            batch = [
                ClientProc(__file__, server.ws_url, token, str(per_proc))
                for _ in range(CLIENT_PROCS)
            ]
            await asyncio.gather(*(c.start() for c in batch))
            reports = await asyncio.gather(*(c.read() for c in batch))
            secs = max(r["secs"] for r in reports)  # connecting only, not process startup
            clients += batch
            opened = sum(r["opened"] for r in reports)
            failed = sum(r["failed"] for r in reports)
            total += opened
            await asyncio.sleep(3)  # let the server settle before reading its memory
            rss = server.rss_kib()
            # one event must reach every socket opened in this step
            for c in batch:
                c.tell("expect")
            await emit_location(url)
            received = sum(r["received"] for r in await asyncio.gather(*(c.read() for c in batch)))
            rows.append(
                (total, opened, failed, opened / secs, rss, (rss - baseline) / total, received)
            )
        impl = ws_impl or "bms serve (realtime.uvproto: lean websockets-sansio)"
        print(
            f"\nWebSocket connections on one server process [{impl}], baseline RSS "
            f"{baseline / 1024:.1f} MiB"
        )
        print(
            f"{'open':>7} {'new':>6} {'failed':>6} {'connects/s':>11} {'RSS MiB':>8} "
            f"{'KiB/conn':>9} {'event reached':>14}"
        )
        for total, opened, failed, rate, rss, per, received in rows:
            print(
                f"{total:>7} {opened:>6} {failed:>6} {rate:>11.0f} {rss / 1024:>8.1f} "
                f"{per:>9.1f} {received:>9}/{opened:<5}"
            )
    finally:
        for c in clients:
            await c.finish()
        await server.stop()
        await drop_database(url)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        asyncio.run(client_main(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="5000,10000")
    parser.add_argument("--ws", default=None, help="uvicorn --ws implementation to compare")
    args = parser.parse_args()
    asyncio.run(coordinator([int(s) for s in args.steps.split(",")], args.ws))


if __name__ == "__main__":
    main()
