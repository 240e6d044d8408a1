"""Across a restore, `/ws/` clients resuming with an old id are told to resync; event ids
continue above anything they could hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

from db.backup.create import create_backup
from db.backup.restore import restore_backup
from domain.transfer.load import load_lines
from tests.backup.world import drop_database, new_database
from tests.conftest import make_settings
from tests.realtime.helpers import FakeSocket, actor, emit, started


async def test_resume_across_a_restore_requires_resync(backend: str, tmp_path: Path) -> None:
    url = await new_database(backend, tmp_path)
    settings = make_settings(url, tmp_path / "data")
    try:
        async with started(settings) as rt:
            before = await emit(rt.hub.store, "locations", count=3)
            archive = (
                await create_backup(
                    url, media_root=tmp_path / "media", out_dir=tmp_path, bms_version="t"
                )
            ).path
            after_backup = await emit(rt.hub.store, "locations", count=2)  # lost by the restore
        result = await restore_backup(archive, url, media_root=tmp_path / "media", force=True)
        assert result.marker_id > after_backup[-1]

        async with started(settings) as rt:
            for held in (before[-1], after_backup[-1]):
                stale = FakeSocket(rt.hub, actor(1))
                await stale.subscribe(["locations"], since=held)
                await stale.wait_for(lambda s=stale: s.frames[-1]["type"] == "resync_required")
            fresh = FakeSocket(rt.hub, actor(1))
            await fresh.subscribe(["locations"], since=result.marker_id)
            new = await emit(rt.hub.store, "locations")
            assert new[0] > result.marker_id
            assert await fresh.wait_ids(1) == new  # a current client just continues
            assert [f["type"] for f in fresh.frames] == ["subscribed", "event"]
            assert await stale.wait_ids(1) == new  # and the stale one continues live
    finally:
        await drop_database(url)


async def test_resume_across_an_import_requires_resync(backend: str, tmp_path: Path) -> None:
    url = await new_database(backend, tmp_path)
    settings = make_settings(url, tmp_path / "data")
    line = b'{"type": "locations", "data": {"name": "BH", "code": "BH", "timezone": "UTC"}}'
    try:
        async with started(settings) as rt:
            held = await emit(rt.hub.store, "locations")
            report = await load_lines(rt.hub.store, [line], media_root=tmp_path)
            assert report.created["locations"] == 1
            async with asyncio.timeout(10):  # the hub learns of the import's marker event
                while rt.hub.last_id <= held[-1]:
                    await asyncio.sleep(0.01)
            stale = FakeSocket(rt.hub, actor(1))
            await stale.subscribe(["locations"], since=held[-1])
            await stale.wait_for(lambda: stale.frames[-1]["type"] == "resync_required")
    finally:
        await drop_database(url)
