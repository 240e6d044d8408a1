"""Schemathesis hooks for tests/e2e/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

The fuzzer must not end its own credentials halfway through the run: it never touches the
profiles of the users it runs as (a role change, deactivation or new password would void
their tokens). Everything else is fair game.
"""

from __future__ import annotations

import os

import schemathesis

OWN_PROFILE_IDS = {part for part in os.environ.get("BMS_FUZZ_OWN_IDS", "").split(",") if part}


@schemathesis.hook
def filter_case(context, case) -> bool:
    if case.operation.path.startswith("/api/profiles/{id}"):
        return str((case.path_parameters or {}).get("id")).strip() not in OWN_PROFILE_IDS
    return True
