"""A request's id travels with the task it enqueues into a real `bms worker`'s log lines,
and the console email backend prints the message as a person reads it."""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from typing import Any

import pytest

from bms.settings import Settings
from tasks.email import render_for_console
from tests.tasks.conftest import wait_until
from tests.tasks.processes import process_env, start


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


@pytest.mark.e2e
async def test_worker_logs_the_request_id_of_the_request_that_queued_the_email(
    login: Any, settings: Settings
) -> None:
    if not settings.redis_url:
        pytest.skip("embedded mode has no separate worker process")
    request_id = f"trace-{uuid.uuid4().hex[:8]}"
    manager = await login("manager")
    body = {"to": ["ops@example.com"], "subject": "Grüße aus BMS", "body": "Schöne Grüße — Ω"}
    response = await manager.post(
        "/api/send-email/", json=body, headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 202, response.text
    worker = await start("worker", process_env(settings, smtp_host="", log_format="json"))
    try:

        async def sent() -> bool:
            return worker.saw('"email sent"')

        await wait_until(sent, timeout=20)
    finally:
        await worker.stop()
    sent_line = next(line for line in _json_lines(worker.lines) if line["event"] == "email sent")
    assert sent_line["request_id"] == request_id
    assert sent_line["role"] == "worker" and sent_line["task"] == "bms.send_email"
    printed = "\n".join(worker.lines)
    assert "Subject: Grüße aus BMS" in printed and "Schöne Grüße — Ω" in printed
    assert "base64" not in printed and "Content-Transfer-Encoding" not in printed


def test_console_rendering_decodes_the_body() -> None:
    message = EmailMessage()
    message["From"] = "bms@example.com"
    message["To"] = "a@example.com"
    message["Subject"] = "Schichtplan für März"
    message.set_content("Zeile eins\nZeile zwei: äöü\n")
    text = render_for_console(message)
    assert "Subject: Schichtplan für März\n" in text
    assert "\n\nZeile eins\nZeile zwei: äöü\n" in text
    assert "Content-Type" not in text and "MIME-Version" not in text
