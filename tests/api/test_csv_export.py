"""`?format=csv`: every filtered row, no pagination, representation columns, visibility kept."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware

from api import csv_export
from api.crud import Resource, resource_routes
from api.errors import EXCEPTION_HANDLERS
from api.resources import incident_tickets as incident_resource
from db import compiled_cache
from db.tables import incident_tickets as t
from domain import incident_tickets
from domain.actors import Actor, Role
from domain.resource import ResourceRules
from tests.builders.tickets import make_incident, make_incident_type, make_service_ticket


def parse(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text)))


CET = timezone(timedelta(hours=1))


def test_cells_follow_json_spelling_and_defuse_formulas() -> None:
    cell = csv_export.csv_cell
    assert cell(None) == ""
    assert cell(True) == "true" and cell(False) == "false"
    assert cell(7) == "7"
    assert cell(datetime(2026, 11, 26, 14, 5, tzinfo=UTC)) == "2026-11-26T14:05:00Z"
    assert cell(date(2026, 11, 26)) == "2026-11-26"
    assert cell([1, 2]) == "[1,2]"
    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("-5 dB") == "'-5 dB"
    assert cell("plain, with comma") == "plain, with comma"


def test_rendered_rows_spell_cells_as_csv_cell_does() -> None:
    """The per-type table that renders rows gives exactly `csv_cell`'s spelling."""
    values: list[object] = [
        None,
        True,
        False,
        0,
        7,
        1.5,
        "",
        "=1+1",
        "@x",
        "\tq",
        "-5 dB",
        "a,b",
        'say "hi"',
    ]
    values += [datetime(2026, 11, 26, 14, 5, tzinfo=UTC), date(2026, 11, 26), [1, 2], {"a": 1}]
    values += [datetime(2026, 11, 26, 14, 5, 7, 120, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=CET)]
    columns = [f"c{i}" for i in range(len(values))]
    text = csv_export._render([dict(zip(columns, values, strict=True))], columns, header=False)
    assert next(csv.reader(io.StringIO(text))) == [csv_export.csv_cell(v) for v in values]


def test_rendered_columns_of_mixed_rows_spell_cells_as_csv_cell_does() -> None:
    """Cells are converted and quoted a column at a time by the column's types: every mix
    of types in a column (formula text among plain text, nulls, bools among ints, other
    time zones, a NUL before "=", commas, quotes and line breaks) still gives the csv
    writer's output of `csv_cell`'s spelling of each cell."""
    when = datetime(2026, 11, 26, 14, 5, 7, 120, tzinfo=UTC)
    columns_of_values: list[list[object]] = [
        [1, 2, None, 3],
        [1.5, None, 2, 0.1],
        ["plain", None, "a,b", 'say "hi"'],
        ["plain", "=1+1", None, "-5 dB"],
        ["ok", "x\x00=y", "", "\tq"],
        [when, None, datetime(2026, 1, 1, tzinfo=CET), when.replace(microsecond=0)],
        [date(2026, 11, 26), when, None, date(2026, 1, 1)],
        [None, None, None, None],
        [True, False, None, True],
        [True, 1, 0, None],
        [[1, 2], {"a": 1}, None, ["x"]],
        ["multi\nline", "cr\r", "text", "null"],
        ['"quoted"', "a,b", "", "x\r\ny"],
        [None, "", "plain", None],
        [7, None, 0.25, "mixed"],
    ]
    columns = [f"c{i}" for i in range(len(columns_of_values))]
    by_row = zip(*columns_of_values, strict=True)
    rows = [dict(zip(columns, values, strict=True)) for values in by_row]
    text = csv_export._render(rows, columns, header=True)
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([csv_export.csv_cell(row[c]) for c in columns] for row in rows)
    assert text == expected.getvalue()


def test_one_column_renders_as_the_csv_writer_does() -> None:
    """A lone empty cell is `""` to the csv writer (an empty line would be no row at all)."""
    rows = [{"c": None}, {"c": "x"}, {"c": ""}, {"c": "a,b"}]
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\r\n").writerows(
        [csv_export.csv_cell(r["c"])] for r in rows
    )
    assert csv_export._render(rows, ["c"], header=False) == expected.getvalue()


async def test_incident_csv_has_every_filtered_row_and_no_pages(login, monkeypatch) -> None:
    monkeypatch.setattr(csv_export, "ROWS_PER_CHUNK", 2)  # several chunks, one header
    monkeypatch.setattr(compiled_cache, "ITERATE_BATCH", 2)  # several FETCHes (PostgreSQL)
    manager = await login("manager")
    kind = await make_incident_type(manager)
    made = [
        await make_incident(manager, incident_type=kind["id"], title=f"Open {n}") for n in range(5)
    ]
    critical = await make_incident(
        manager, incident_type=kind["id"], title="=cmd|' /C calc'!A0", priority="critical"
    )
    response = await manager.get("/api/incident-tickets/?format=csv&priority=medium&page_size=1")
    rows = parse(response)
    assert 'filename="incident-tickets.csv"' in response.headers["content-disposition"]
    assert list(rows[0]) == list(made[0])  # columns = the representation's fields, in order
    assert [row["number"] for row in rows] == [m["number"] for m in reversed(made)]
    assert rows[-1]["facility"] == "" and rows[-1]["on_air_impact"] == "false"
    assert rows[-1]["created_at"] == made[0]["created_at"]
    viewer = await login("viewer")
    only = parse(await viewer.get("/api/incident-tickets/?format=csv&priority=critical"))
    assert [row["id"] for row in only] == [str(critical["id"])]
    assert only[0]["title"] == "'=cmd|' /C calc'!A0"
    assert (await viewer.get("/api/incident-tickets/?format=csv&status=nope")).status_code == 400
    assert (await viewer.get("/api/incident-tickets/?format=csv&status=closed")).text == ""


async def test_service_and_type_lists_export_too(login) -> None:
    manager = await login("manager")
    await make_incident_type(manager, name="Power")
    types = parse(await manager.get("/api/incident-types/?format=csv"))
    assert [row["name"] for row in types] == ["Power"]
    ticket = await make_service_ticket(manager, due_date="2026-12-31")
    services = parse(await manager.get("/api/service-tickets/?format=csv&due_after=2026-12-01"))
    assert [(row["number"], row["due_date"]) for row in services] == [
        (ticket["number"], "2026-12-31")
    ]
    json_list = await manager.get("/api/service-tickets/?format=json")
    assert json_list.json()["count"] == 1


class _ActorFromHeader(BaseHTTPMiddleware):
    """Stand-in for the auth middleware: `X-User` names the acting operator."""

    async def dispatch(self, request, call_next):
        user_id = int(request.headers["X-User"])
        request.state.actor = Actor(user_id, f"user{user_id}", Role.OPERATOR)
        return await call_next(request)


@pytest.fixture
async def own_only_client(store):
    """An app whose incident list shows each operator only the tickets they reported."""
    resource = Resource(
        path="/mine",
        spec=incident_resource.RESOURCE.spec,
        rules=ResourceRules(
            serialize=incident_tickets.serialize,
            list_query=lambda actor: incident_tickets.list_query(actor).where(
                t.c.reported_by == actor.id
            ),
            get=incident_tickets.get_incident_ticket,
        ),
        csv=True,
    )
    app = Starlette(routes=resource_routes(resource), exception_handlers=EXCEPTION_HANDLERS)
    app.add_middleware(_ActorFromHeader)
    app.state.store = store
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_csv_keeps_the_list_query_visibility(login, own_only_client) -> None:
    manager = await login("manager")
    operator = await login("operator")
    kind = await make_incident_type(manager)
    await make_incident(manager, incident_type=kind["id"])
    mine = await make_incident(operator, incident_type=kind["id"])
    as_operator = {"X-User": str(operator.user["user"])}
    rows = parse(await own_only_client.get("/mine/?format=csv", headers=as_operator))
    assert [row["id"] for row in rows] == [str(mine["id"])]
    page = (await own_only_client.get("/mine/", headers=as_operator)).json()
    assert page["count"] == 1
