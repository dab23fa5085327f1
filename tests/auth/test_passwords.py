"""Passwords are hashed with argon2id at the profile SENSORBASE_PASSWORD_HASH_PROFILE names
(auth/users.py): by default argon2-cffi's own defaults. tests/conftest.py sets the cheapest
profile for the suite's processes and servers; the default is pinned here with it unset."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher, extract_parameters, profiles

from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from tests.conftest import app_for, auth

PROFILE_VARIABLE = "SENSORBASE_PASSWORD_HASH_PROFILE"


def test_the_default_profile_is_argon2_cffi_s_defaults(tmp_path: Path) -> None:
    """A server started without the setting hashes as argon2-cffi's PasswordHasher() does."""
    environ = {k: v for k, v in os.environ.items() if k != PROFILE_VARIABLE}
    made = subprocess.run(
        [sys.executable, "-c", "from sensorbase.auth.users import Passwords; "
         "from sensorbase.settings import Settings; "
         "print(Passwords(Settings().password_hash_profile).hash('correct horse'))"],
        capture_output=True, text=True, check=True, timeout=60, env=environ, cwd=tmp_path,
    )  # fmt: skip
    hashed = made.stdout.strip()
    defaults = PasswordHasher()
    assert extract_parameters(hashed) == profiles.RFC_9106_LOW_MEMORY
    assert (defaults.time_cost, defaults.memory_cost, defaults.parallelism) == (3, 65536, 4)
    assert defaults.verify(hashed, "correct horse")


@pytest.fixture(params=["rfc_9106_low_memory", "cheapest"])
def profiled(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Services]:
    chosen = settings.model_copy(update={"password_hash_profile": request.param})
    svc = Services(chosen, open_store(chosen))
    svc.bootstrap_key = svc.start()  # type: ignore[attr-defined]
    yield svc
    svc.stop()


async def test_a_user_s_password_is_hashed_at_the_profile_set(profiled: Services) -> None:
    """Through the API: the stored hash carries the profile's parameters, and signs in."""
    admin = auth(profiled.bootstrap_key.token)  # type: ignore[attr-defined]
    body = {"email": "ada@example.com", "password": "correct horse"}
    transport = httpx.ASGITransport(app=app_for(profiled))
    async with httpx.AsyncClient(transport=transport, base_url="http://sensorbase") as client:
        reply = await client.post("/v1/users", json=body, headers=admin)
        assert reply.status_code == 201, reply.text
        assert (await client.post("/restapi/login", json=body)).status_code == 200
        wrong = {**body, "password": "guess"}
        assert (await client.post("/restapi/login", json=wrong)).status_code == 401
    stored = profiled.store.reader().get_user("ada@example.com")
    assert stored is not None
    profile = getattr(profiles, profiled.settings.password_hash_profile.upper())
    assert extract_parameters(stored.password_hash) == profile
