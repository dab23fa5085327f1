"""Passwords are hashed with argon2id at argon2-cffi's defaults (auth/users.py), in a process
of their own: tests/conftest.py makes the suite's in-process hashes cheap."""

from __future__ import annotations

import subprocess
import sys

from argon2 import PasswordHasher, extract_parameters, profiles


def test_a_password_is_hashed_with_argon2id_at_argon2_cffi_s_defaults() -> None:
    made = subprocess.run(
        [sys.executable, "-c", "from sensorbase.auth.users import hash_password as h; "
         "print(h('correct horse'))"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    hashed = made.stdout.strip()
    assert extract_parameters(hashed) == profiles.RFC_9106_LOW_MEMORY  # argon2-cffi's defaults
    assert PasswordHasher().verify(hashed, "correct horse")
