"""`bms user ...` over the real command: stdin passwords, one-line errors, exit statuses."""

from __future__ import annotations

import pytest

from tests.e2e.processes import bms_env, run_bms

pytestmark = pytest.mark.e2e


def test_user_commands_from_a_shell(tmp_path) -> None:
    env = bms_env(BMS_DATA_DIR=str(tmp_path))
    created = run_bms("createuser", "--username", "ana", "--role", "manager", "--password-stdin",
                      env=env, input="first-passphrase-123\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    again = run_bms("createuser", "--username", "ana", "--password-stdin", env=env,
                    input="first-passphrase-123\n")  # fmt: skip
    assert again.returncode == 1
    assert again.stderr == "bms: username: A user with that username already exists.\n"
    changed = run_bms("user", "set-password", "ana", env=env, input="second-passphrase-456\n")
    assert changed.returncode == 0, changed.stderr
    assert "new password set for 'ana'" in changed.stdout
    weak = run_bms("user", "set-password", "ana", env=env, input="ana\n")
    assert weak.returncode == 1 and weak.stderr.startswith("bms: password: ")
    assert run_bms("user", "unlock", "ana", env=env).returncode == 0
    listed = run_bms("user", "list", env=env)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:3] == [
        "ana", "manager", "yes"
    ]  # fmt: skip
    assert run_bms("user", "deactivate", "ana", env=env).returncode == 0
    assert run_bms("user", "list", env=env).stdout.splitlines()[1].split()[2] == "no"
    unknown = run_bms("user", "unlock", "nobody", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr == "bms: no user named 'nobody' (see `bms user list`)\n"
