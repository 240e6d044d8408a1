"""Administrative commands that write through the unit of work."""

from __future__ import annotations

import sys

from bms.settings import Settings
from db.store import Store
from domain.errors import DomainError, ValidationFailed, constraints_as_domain_errors
from domain.users import create_user


async def create_user_command(
    settings: Settings, *, username: str, role: str, email: str, password: str, generated: bool
) -> int:
    """Create a user; print the generated password once, never store it in clear."""
    store = Store(settings.effective_database_url, fast_paths=settings.fast_paths)
    await store.connect()
    try:
        with constraints_as_domain_errors():
            async with store.unit_of_work(actor_id=None) as uow:
                profile = await create_user(
                    uow, username=username, password=password, role=role, email=email
                )
    except ValidationFailed as exc:
        for field, messages in exc.errors.items():
            print(f"bms: {field}: {' '.join(messages)}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"bms: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await store.disconnect()
    print(f"bms: created {role} {profile['username']!r} (user id {profile['user']})")
    if generated:
        print(f"bms: password: {password}")
    return 0
