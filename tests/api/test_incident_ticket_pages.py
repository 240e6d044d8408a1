"""Incident list pages come from statements built once per query shape: values never leak."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from starlette.datastructures import URL, QueryParams

from api import listing
from api.resources.incident_tickets import RESOURCE
from db.tables import incident_tickets as incident_tickets_table
from domain import incident_tickets
from domain.actors import Actor, Role
from tests.builders.tickets import make_incident, make_incident_type, move

LIST = "/api/incident-tickets/"


@pytest.fixture
async def manager(login):
    return await login("manager")


@pytest.fixture
async def kind(manager) -> dict:
    return await make_incident_type(manager)


async def _page(client, query: str) -> dict:
    response = await client.get(LIST + query)
    assert response.status_code == 200, response.text
    return response.json()


async def _ids(client, query: str) -> list[int]:
    return [row["id"] for row in (await _page(client, query))["results"]]


async def test_one_shape_with_other_values_gives_their_rows(manager, kind) -> None:
    a = await make_incident(manager, incident_type=kind["id"], priority="low")
    b = await make_incident(manager, incident_type=kind["id"], priority="high")
    await move(manager, f"{LIST}{b['id']}/", "acknowledged")

    assert await _ids(manager, "?status=open&ordering=-priority") == [a["id"]]
    assert await _ids(manager, "?status=acknowledged&ordering=-priority") == [b["id"]]
    assert await _ids(manager, "?priority=high") == [b["id"]]
    assert await _ids(manager, "?priority=low") == [a["id"]]
    # Any of (a list) and one value of the same filter are different shapes.
    assert await _ids(manager, "?priority=low,high") == [b["id"], a["id"]]
    assert await _ids(manager, "?priority=high") == [b["id"]]
    assert (await _page(manager, "?status=closed"))["count"] == 0


async def test_pages_count_and_links(manager, kind) -> None:
    made = [await make_incident(manager, incident_type=kind["id"]) for _ in range(5)]
    newest_first = [t["id"] for t in reversed(made)]

    first = await _page(manager, "?status=open&page_size=2")
    assert first["count"] == 5
    assert [row["id"] for row in first["results"]] == newest_first[:2]
    assert first["previous"] is None
    assert first["next"] == "http://testserver/api/incident-tickets/?status=open&page_size=2&page=2"
    second = await _page(manager, "?status=open&page_size=2&page=2")
    assert [row["id"] for row in second["results"]] == newest_first[2:4]
    last = await _page(manager, "?status=open&page_size=2&page=3")
    assert [row["id"] for row in last["results"]] == newest_first[4:]
    assert last["next"] is None and last["count"] == 5
    past = await manager.get(LIST + "?status=open&page_size=2&page=4")
    assert past.status_code == 404
    assert past.json() == {"detail": "Invalid page."}


async def test_search_treats_like_wildcards_literally(manager, kind) -> None:
    percent = await make_incident(manager, incident_type=kind["id"], title="Uplink at 100% load")
    await make_incident(manager, incident_type=kind["id"], title="Uplink at 1000 Mbit")

    assert await _ids(manager, "?search=100%25") == [percent["id"]]
    assert await _ids(manager, "?search=uplink_") == []
    assert len(await _ids(manager, "?search=UPLINK")) == 2


def test_page_statements_are_built_once_per_shape_of_shared_queries() -> None:
    spec, query = RESOURCE.spec, RESOURCE.list_query(None)
    one_shape, one_values = spec.shape(QueryParams("facility=1&ordering=-priority"))
    two_shape, two_values = spec.shape(QueryParams("facility=2&ordering=-priority"))
    assert one_shape == two_shape and one_values != two_values
    shared = listing._SHARED[id(query)]
    statements = listing._page_statements(shared, spec, one_shape)
    assert listing._page_statements(shared, spec, two_shape) is statements
    other_shape, _ = spec.shape(QueryParams("facility=2"))
    assert listing._page_statements(shared, spec, other_shape) is not statements


def test_choices_are_written_into_the_statement() -> None:
    """A choice filter's values are part of the shape (`Filter.compare_inlined`): the
    planner sees them; the same set in any order or repeated is the same statement."""
    spec = RESOURCE.spec
    open_shape, open_values = spec.shape(QueryParams("status=open&priority=high,critical"))
    closed_shape, _ = spec.shape(QueryParams("status=closed&priority=high,critical"))
    assert open_shape != closed_shape and open_values == {}
    same, _ = spec.shape(QueryParams("status=open&priority=critical,high,critical"))
    assert same == open_shape
    sql = str(
        sa.select(incident_tickets_table.c.id)
        .where(*spec.shaped_where(open_shape))
        .compile(compile_kwargs={"render_postcompile": True})
    )
    assert "status = 'open'" in sql and "priority IN ('critical', 'high')" in sql, sql


async def test_deep_pages_pick_their_ids_first_and_give_the_same_rows(
    store, manager, kind, monkeypatch
) -> None:
    """Past `DEEP_PAGE_OFFSET` a page reads its ids first (db/test_ordering_indexes.py shows
    from an index alone); its rows, order, count and links are those of the plain page."""
    made = [await make_incident(manager, incident_type=kind["id"]) for _ in range(6)]
    await move(manager, f"{LIST}{made[1]['id']}/", "acknowledged")  # five open: 3 pages
    queries = ("", "status=open", "ordering=title", "ordering=-priority", "search=Incident")

    async def pages() -> dict[str, list[dict]]:
        return {q: [await _page(manager, f"?{q}&page_size=2&page={n}") for n in (1, 2, 3)]
                for q in queries}  # fmt: skip

    plain = await pages()
    monkeypatch.setattr(listing, "DEEP_PAGE_OFFSET", 2)  # pages 2 and 3 are deep now
    used = []
    monkeypatch.setattr(listing, "page_select", _recording(listing.page_select, used))
    listing._PAGES.clear()  # statements built again, the deep ones included
    assert await pages() == plain
    assert True in used  # the deep statements were built and read
    newest_first = [t["id"] for t in reversed(made)]
    by_page = [[row["id"] for row in page["results"]] for page in plain[""]]
    assert by_page == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert plain["status=open"][2]["count"] == 5


def _recording(page_select: Any, used: list[bool]) -> Any:
    def recorded(*args: Any, **kwargs: Any) -> Any:
        used.append(kwargs.get("ids_first", False))
        return page_select(*args, **kwargs)

    return recorded


async def test_queries_built_per_request_are_not_cached(store, manager, kind) -> None:
    await make_incident(manager, incident_type=kind["id"])
    before = len(listing._PAGES)
    async with store.connection() as conn:
        page = await listing.paginate(
            conn,
            sa.select(*RESOURCE.list_query(None).selected_columns),  # a fresh object
            spec=RESOURCE.spec,
            params=QueryParams("status=open&ordering=title"),
            url=None,  # type: ignore[arg-type]  (no next/previous page to link)
            serialize=RESOURCE.serialize,
        )
    assert page["count"] == 1
    assert len(listing._PAGES) == before


async def test_totals_follow_every_change_of_the_list(store, manager, kind) -> None:
    first = await make_incident(manager, incident_type=kind["id"])
    await make_incident(manager, incident_type=kind["id"])
    assert (await _page(manager, "?status=open"))["count"] == 2
    assert (await _page(manager, "?status=open"))["count"] == 2  # counted once, then reused

    await make_incident(manager, incident_type=kind["id"])
    assert (await _page(manager, "?status=open"))["count"] == 3
    await move(manager, f"{LIST}{first['id']}/", "acknowledged")
    assert (await _page(manager, "?status=open"))["count"] == 2
    assert (await _page(manager, "?status=acknowledged"))["count"] == 1
    # A write through the unit of work anywhere (another process, a job) is seen too: the
    # total is tied to the topic's newest event in the database, not to this process.
    job = Actor(id=0, username="job", role=Role.ADMIN, via="system")
    async with store.unit_of_work(actor_id=None) as uow:
        await incident_tickets.delete_incident_ticket(uow, job, first["id"])
    assert (await _page(manager, "?status=acknowledged"))["count"] == 0
    assert (await _page(manager, "?status=open&page_size=1&page=2"))["count"] == 2


async def test_a_total_is_reused_until_its_topic_changes_or_it_ages(
    store, manager, kind, monkeypatch
) -> None:
    made = [await make_incident(manager, incident_type=kind["id"]) for _ in range(3)]
    assert (await _page(manager, "?status=open&page_size=2"))["count"] == 3
    # A row removed behind the unit of work's back (no event): the cached total shows it
    # was not counted again (a full page: a short one would tell its total itself) ...
    async with store.connection() as conn:
        await conn.execute(sa.delete(incident_tickets_table).where(
            incident_tickets_table.c.id == made[0]["id"]))  # fmt: skip
    page = await _page(manager, "?status=open&page_size=2")
    assert (page["count"], len(page["results"])) == (3, 2)
    # ... and the age limit bounds how long such a total lives.
    monkeypatch.setattr(listing, "COUNT_MAX_AGE_SECS", 0.0)
    assert (await _page(manager, "?status=open&page_size=2"))["count"] == 2


class _Noting:
    """The real connection, noting each statement it runs (which page statement was read)."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.ran = conn, []

    async def fetch_all(self, query: Any) -> Any:
        self.ran.append(getattr(query, "statement", query))
        return await self.conn.fetch_all(query)

    async def fetch_one(self, query: Any) -> Any:
        self.ran.append(getattr(query, "statement", query))
        return await self.conn.fetch_one(query)


async def _noted_page(
    store: Any, query_string: str, **options: Any
) -> tuple[dict[str, Any], list[Any]]:
    """One page of the ticket list through `listing.paginate`, and the statements it ran."""
    async with store.connection() as conn:
        noting = _Noting(conn)
        found = await listing.paginate(
            noting,  # type: ignore[arg-type]  # a connection, noted
            RESOURCE.list_query(None),
            spec=RESOURCE.spec,
            params=QueryParams(query_string),
            url=URL(f"http://testserver{LIST}?{query_string}"),
            serialize=RESOURCE.serialize,
            counts_scope=store,
            **options,
        )
    return found, noting.ran


async def test_a_search_known_to_match_few_rows_finds_them_first(
    store, manager, kind, monkeypatch
) -> None:
    """PostgreSQL (trigram index): once a search's total is known to be small, its pages
    come from `_matches_first`; the same rows, order and count. SQLite: the plain page."""
    made = [
        await make_incident(manager, incident_type=kind["id"], title=f"Feed {n} LOST sync")
        for n in range(5)
    ]
    await make_incident(manager, incident_type=kind["id"], title="Power dip")
    newest_first = [t["id"] for t in reversed(made)]
    spec, query = RESOURCE.spec, RESOURCE.list_query(None)
    search_index = await store.has_index(spec.search_index)
    assert search_index is store.is_postgres

    async def page(query_string: str) -> tuple[list[int], int, bool]:
        found, ran = await _noted_page(store, query_string, search_index=search_index)
        params = QueryParams(query_string)
        shape, values = spec.shape(params)
        number, size = listing.page_numbers(params)
        first_page = listing.first_page_size(number, size, values)  # statements of its own
        shared = listing._SHARED[id(query)]
        few = listing._page_statements(shared, spec, shape, first_page=first_page).few
        return [r["id"] for r in found["results"]], found["count"], ran[0] is few

    # Not counted yet: the plain page (a search may match every row).
    assert await page("search=lost+SYNC&page_size=2") == (newest_first[:2], 5, False)
    for n, ids in ((1, newest_first[:2]), (2, newest_first[2:4]), (3, newest_first[4:])):
        assert await page(f"search=lost+SYNC&page_size=2&page={n}") == (ids, 5, search_index)
    # A search last counted above the line reads the plain page.
    monkeypatch.setattr(listing, "SEARCH_FEW_ROWS", 4)
    assert await page("search=lost+SYNC&page_size=2") == (newest_first[:2], 5, False)


async def test_a_page_that_is_not_full_is_its_own_total(store, manager, kind) -> None:
    """The last page gives the total (offset + its rows): no count statement runs."""
    for n in range(3):
        await make_incident(manager, incident_type=kind["id"], title=f"Dish {n} icing")

    async def page(query_string: str) -> tuple[int, int, int]:
        found, ran = await _noted_page(store, query_string)
        return found["count"], len(found["results"]), len(ran)

    assert await page("search=icing") == (3, 3, 1)
    assert await page("search=icing&page_size=2&page=2") == (3, 1, 1)
    assert await page("search=ICING&page_size=2") == (3, 2, 2)  # a full page: counted
    assert await page("search=ICING&page_size=2") == (3, 2, 1)  # then cached
