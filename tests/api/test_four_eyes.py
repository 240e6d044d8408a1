"""Four-eyes approval (issue #10 §7, contract section 5): nobody reviews their own time-off
request or time entry; another manager or an admin reviews a manager's."""

from __future__ import annotations

import pytest

from tests.builders.time_entries import make_time_entry
from tests.builders.time_off import make_time_off

OWN = {"detail": "You cannot review your own request."}


@pytest.mark.parametrize("role", ["manager", "admin"])
@pytest.mark.parametrize("verdict", ["approved", "denied"])
async def test_nobody_reviews_their_own_time_off(login, role, verdict) -> None:
    requester = await login(role)
    request = await make_time_off(requester)
    url = f"/api/time-off-requests/{request['id']}/"
    refused = await requester.patch(url, json={"status": verdict})
    assert refused.status_code == 403 and refused.json() == OWN
    assert (await requester.get(url)).json()["status"] == "pending"
    other = await login("manager")  # another manager reviews it (an admin's too)
    reviewed = await other.patch(url, json={"status": verdict})
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["reviewed_by"] == other.user["user"]


@pytest.mark.parametrize("verdict", ["approved", "rejected"])
async def test_nobody_reviews_their_own_time_entry(login, verdict) -> None:
    manager = await login("manager")
    admin = await login("admin")
    entry = await make_time_entry(manager, status="submitted")
    url = f"/api/time-entries/{entry['id']}/"
    refused = await manager.patch(url, json={"status": verdict})
    assert refused.status_code == 403 and refused.json() == OWN
    reviewed = await admin.patch(url, json={"status": verdict})
    assert reviewed.status_code == 200, reviewed.text
