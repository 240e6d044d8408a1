"""Static checks for the container setup: compose.yaml, Dockerfile and env examples.

No Docker engine is needed; the files are parsed and cross-checked against the
settings model and the CLI parser.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bms.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = {"postgres", "redis", "migrate", "web", "worker", "scheduler"}
BMS_SERVICES = ("migrate", "web", "worker", "scheduler")
# Services built from the BMS image whose process does not serve HTTP, so the
# image's HEALTHCHECK (which probes /healthz on port 8000) must be overridden.
NON_HTTP_SERVICES = ("migrate", "worker", "scheduler")

# `KEY=value` lines; a commented-out `# KEY=value` line still documents KEY.
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_COMMENTED_ENV_LINE = re.compile(r"^#\s?([A-Z_][A-Z0-9_]*)=")


# --- helpers -------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "compose.yaml must be a mapping"
    return data


def _services() -> dict[str, Any]:
    services = _compose().get("services")
    assert isinstance(services, dict), "compose.yaml has no services mapping"
    return services


def _env_file_paths(service: dict[str, Any]) -> list[str]:
    """env_file may be a string, a list of strings, or a list of {path: ...} mappings."""
    value = service.get("env_file")
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item["path"] if isinstance(item, dict) else item for item in items]


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        assert match, f"{path.name}:{lineno}: not a KEY=value line: {raw!r}"
        key, value = match.groups()
        assert key not in values, f"{path.name}:{lineno}: {key} is set twice"
        values[key] = value
    return values


def _documented_keys(path: Path) -> set[str]:
    """Keys set or shown commented-out in an env example file."""
    keys = set(_read_env_file(path))
    for raw in path.read_text().splitlines():
        match = _COMMENTED_ENV_LINE.match(raw.strip())
        if match:
            keys.add(match.group(1))
    return keys


def _setting_env_names() -> dict[str, str]:
    """Map each environment variable name Settings reads to its field name.

    That is the upper-cased field name, or the alias where one is set (data_dir is
    read from BMS_DATA_DIR, not DATA_DIR).
    """
    names = {}
    for name, field in Settings.model_fields.items():
        names[(field.alias or name).upper()] = name
    return names


def _dockerfile_final_stage() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the last build stage, continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if not full:
            continue
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def _cli_subcommands() -> dict[str, argparse.ArgumentParser]:
    cli = importlib.import_module("bms.cli")
    parser = cli.build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    assert parser._subparsers is not None, "bms.cli.build_parser() defines no subcommands"
    return dict(parser._subparsers._group_actions[0].choices)


# --- compose.yaml ----------------------------------------------------------------


def test_compose_has_no_obsolete_version_key() -> None:
    assert "version" not in _compose()


def test_compose_defines_all_services() -> None:
    missing = SERVICES - set(_services())
    assert not missing, f"compose.yaml is missing services: {sorted(missing)}"


@pytest.mark.parametrize("name", ["postgres", "redis", "web"])
def test_service_has_healthcheck(name: str) -> None:
    healthcheck = _services()[name].get("healthcheck")
    assert isinstance(healthcheck, dict), f"{name} has no healthcheck"
    assert not healthcheck.get("disable"), f"{name} healthcheck is disabled"
    assert healthcheck.get("test"), f"{name} healthcheck has no test"


def test_healthcheck_commands() -> None:
    services = _services()
    postgres_test = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in postgres_test
    # $$ stops compose from interpolating; the container's shell expands the variable.
    assert "$$POSTGRES_USER" in postgres_test and "$$POSTGRES_DB" in postgres_test
    assert "ping" in services["redis"]["healthcheck"]["test"]
    web_test = " ".join(services["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in web_test


@pytest.mark.parametrize("name", NON_HTTP_SERVICES)
def test_non_http_services_disable_image_healthcheck(name: str) -> None:
    assert _services()[name].get("healthcheck") == {"disable": True}


@pytest.mark.parametrize("name", BMS_SERVICES)
def test_bms_service_command_starts_with_bms(name: str) -> None:
    service = _services()[name]
    command = service.get("command")
    assert isinstance(command, list) and len(command) >= 2, f"{name}: command must be a list"
    assert command[0] == "bms"
    assert "build" in service, f"{name} must run the image built from this repo"


def test_postgres_uses_named_volume() -> None:
    compose = _compose()
    volumes = _services()["postgres"].get("volumes", [])
    assert any(str(v).startswith("pgdata:") for v in volumes)
    assert "pgdata" in (compose.get("volumes") or {})


def test_web_publishes_port_8000() -> None:
    assert "${BMS_WEB_PORTS:-8000}:8000" in [str(p) for p in _services()["web"].get("ports", [])]


@pytest.mark.parametrize(
    ("profile", "names"),
    [("proxy", {"caddy"}), ("monitoring", {"prometheus", "alertmanager", "grafana"})],
)
def test_profiles_mount_the_shipped_deploy_files(profile: str, names: set[str]) -> None:
    services = _services()
    assert {n for n, s in services.items() if profile in s.get("profiles", [])} == names
    for name in names:
        for volume in services[name].get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_migrate_runs_once_after_postgres() -> None:
    migrate = _services()["migrate"]
    assert migrate["command"] == ["bms", "migrate"]
    assert str(migrate.get("restart")) == "no"
    depends_on = migrate.get("depends_on")
    assert depends_on == {"postgres": {"condition": "service_healthy"}}


def test_web_depends_on_migrate_completing() -> None:
    depends_on = _services()["web"].get("depends_on")
    assert isinstance(depends_on, dict), "web depends_on must use the long form"
    assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    assert depends_on["postgres"] == {"condition": "service_healthy"}
    assert depends_on["redis"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", ["worker", "scheduler"])
def test_background_services_share_web_dependencies(name: str) -> None:
    services = _services()
    assert services[name].get("depends_on") == services["web"].get("depends_on")
    assert _env_file_paths(services[name]) == _env_file_paths(services["web"])


def test_env_files_have_examples() -> None:
    referenced = {path for service in _services().values() for path in _env_file_paths(service)}
    assert "env/bms.env" in referenced
    assert "env/postgres.env" in referenced
    # env/bms.env is a copy of the example of the host's environment (README: Environments).
    examples = {"env/bms.env": ["env/production.env.example", "env/staging.env.example"]}
    for path in sorted(referenced):
        for example in examples.get(path, [f"{path}.example"]):
            assert (ROOT / example).is_file(), f"{path} is referenced but {example} does not exist"


def test_real_env_files_are_git_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "env/*.env" in ignored


# --- env examples ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["development", "staging", "production"])
def test_environment_example_keys_are_known_settings(name: str) -> None:
    keys = set(_read_env_file(ROOT / "env" / f"{name}.env.example"))
    unknown = keys - set(_setting_env_names())
    assert not unknown, f"env/{name}.env.example sets unknown settings: {sorted(unknown)}"
    assert _read_env_file(ROOT / "env" / f"{name}.env.example")["BMS_ENV"] == name
    if name != "development":
        for required in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS"):
            assert required in keys


def test_postgres_env_matches_database_url() -> None:
    pg = _read_env_file(ROOT / "env" / "postgres.env.example")
    bms = _read_env_file(ROOT / "env" / "production.env.example")
    expected = (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{pg['POSTGRES_DB']}"
    )
    assert bms["DATABASE_URL"] == expected


def test_top_level_env_example_lists_every_setting() -> None:
    documented = _documented_keys(ROOT / ".env.example")
    env_names = set(_setting_env_names())
    assert not env_names - documented, f"not in .env.example: {sorted(env_names - documented)}"
    assert not documented - env_names, f"unknown in .env.example: {sorted(documented - env_names)}"


def test_top_level_env_example_values_are_the_defaults() -> None:
    values = _read_env_file(ROOT / ".env.example")
    env_names = _setting_env_names()
    fields = {env_names[key]: value for key, value in values.items()}
    # Passing every listed field explicitly keeps the test independent of the caller's
    # environment. Aliased fields are passed by alias (populate_by_name is off).
    settings = Settings(**{Settings.model_fields[n].alias or n: v for n, v in fields.items()})
    for name in fields:
        default = Settings.model_fields[name].get_default(call_default_factory=True)
        assert getattr(settings, name) == default, f".env.example {name.upper()} is not the default"


# --- Dockerfile ------------------------------------------------------------------


def test_dockerfile_runs_as_non_root_user() -> None:
    users = [args for kw, args in _dockerfile_final_stage() if kw == "USER"]
    assert users, "final stage has no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "final stage runs as root"


def test_dockerfile_has_healthcheck_and_exposes_8000() -> None:
    stage = _dockerfile_final_stage()
    healthchecks = [args for kw, args in stage if kw == "HEALTHCHECK"]
    assert healthchecks, "final stage has no HEALTHCHECK"
    assert not healthchecks[-1].upper().startswith("NONE"), "HEALTHCHECK NONE"
    assert "/healthz" in healthchecks[-1]
    exposed = [port for kw, args in stage if kw == "EXPOSE" for port in args.split()]
    assert "8000" in exposed or "8000/tcp" in exposed


def test_dockerfile_cmd_serves_on_all_interfaces() -> None:
    cmds = [args for kw, args in _dockerfile_final_stage() if kw == "CMD"]
    assert cmds, "final stage has no CMD"
    assert json.loads(cmds[-1]) == ["bms", "serve", "--host", "0.0.0.0", "--port", "8000"]


# --- CLI (bms.cli.build_parser) --------------------------------------------------


def test_cli_has_expected_subcommands() -> None:
    expected = {"serve", "migrate", "createuser", "seed-demo", "worker", "scheduler", "subscribe"}
    missing = expected - set(_cli_subcommands())
    assert not missing, f"bms CLI lacks subcommands: {sorted(missing)}"


@pytest.mark.parametrize("name", BMS_SERVICES)
def test_compose_command_is_a_cli_subcommand(name: str) -> None:
    command = _services()[name]["command"]
    assert command[1] in _cli_subcommands(), f"{name}: unknown subcommand {command[1]!r}"


def test_dockerfile_cmd_is_a_cli_subcommand() -> None:
    cmds = [args for kw, args in _dockerfile_final_stage() if kw == "CMD"]
    assert json.loads(cmds[-1])[1] in _cli_subcommands()


@pytest.mark.parametrize("name", BMS_SERVICES)
def test_compose_command_options_parse(name: str) -> None:
    """The options compose passes (e.g. serve --workers) must be accepted by the CLI."""
    command = _services()[name]["command"]
    parser = importlib.import_module("bms.cli").build_parser()
    try:
        parser.parse_args(command[1:])
    except SystemExit as exc:
        pytest.fail(f"{name}: `{' '.join(command)}` is rejected by the CLI (exit {exc.code})")


def test_dockerfile_runtime_has_the_postgresql_client() -> None:
    """`bms backup` and `bms restore` run pg_dump/pg_restore inside the container (#13)."""
    runs = " ".join(args for kw, args in _dockerfile_final_stage() if kw in ("RUN", "ARG"))
    assert "apt-get install" in runs and "postgresql-client" in runs


def test_redis_keeps_the_task_stream_across_restarts() -> None:
    """AOF on, data on a volume: queued and delayed tasks survive a Redis restart (#11)."""
    redis = _services()["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"])
