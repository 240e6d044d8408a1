"""deploy/prometheus and deploy/grafana: promtool checks and unit-tests the alert rules, and
every metric the rules and the dashboard use is one BMS exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from db.store import Store

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
# Named in COMMON.md for other issues (#11 outbox, #13 backups): rules may use them first.
EXPORTED_ELSEWHERE = {
    "bms_email_outbox_messages",
    "bms_email_outbox_oldest_age_seconds",
    "bms_emails_failed_total",
    "bms_backup_last_success_timestamp_seconds",
}
_METRIC = re.compile(r"\bbms_[a-z0-9_]+")
_SUFFIXES = ("_bucket", "_count", "_sum", "_created")


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: .ci/run installs Debian's prometheus package"
    done = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_and_config_pass_promtool_check() -> None:
    assert "SUCCESS" in _promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")


def test_alert_rules_fire_and_stay_quiet_as_their_unit_tests_expect() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts.test.yml")


def _rule_metrics() -> set[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return set(_METRIC.findall("\n".join(exprs)))


def _dashboard_metrics() -> set[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "bms.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return set(_METRIC.findall("\n".join(exprs)))


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_alert_has_a_severity_and_a_runbook() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]


async def test_rules_and_dashboard_use_only_metrics_bms_exports(
    client: Any, store: Store, login: Any
) -> None:
    await (await login("viewer")).get("/api/locations/")  # a request: HTTP series exist
    text = (await client.get("/metrics")).text
    exported = {_base(m) for m in re.findall(r"^(bms_[a-z0-9_]+)", text, re.MULTILINE)}
    exported |= {m.removesuffix("_total") for m in exported}
    if not store.is_postgres:  # no pool, no relay (memory://) on the embedded backends
        exported |= {m for m in _rule_metrics() | _dashboard_metrics() if "pool" in m}
        exported |= {m for m in _rule_metrics() | _dashboard_metrics() if "unpublished" in m}
    used = {_base(m) for m in _rule_metrics() | _dashboard_metrics()}
    missing = used - exported - EXPORTED_ELSEWHERE
    assert not missing, f"used by deploy/ but not exported: {sorted(missing)}"
