"""People who sign in with an email and a password (Madevo's login, the dashboard).

Passwords are low-entropy secrets, so they get argon2id, unlike API keys (see keys.py), at the
cost of one of argon2-cffi's profiles (`SENSORBASE_PASSWORD_HASH_PROFILE`): by default its own
default, RFC 9106's low-memory profile (64 MiB, 3 passes, 4 lanes: ~0.2 s of CPU a hash or
sign-in). A hash records its parameters, so a password hashed under another profile still
verifies. A user acts with the scopes of their role."""

from __future__ import annotations

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from sensorbase.errors import WrongCredentials
from sensorbase.model import User
from sensorbase.settings import PasswordHashProfile
from sensorbase.storage.base import Reader


class Passwords:
    """Hashes passwords at one profile and checks a sign-in against the stored hash."""

    def __init__(self, profile: PasswordHashProfile) -> None:
        self._hasher = PasswordHasher.from_parameters(getattr(profiles, profile.upper()))
        # Verifying against this when the email is unknown keeps both failures equally slow.
        self._dummy = self._hasher.hash("not a password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def check(self, reader: Reader, email: str, password: str) -> User:
        user = reader.get_user(email)
        try:
            self._hasher.verify(user.password_hash if user else self._dummy, password)
        except (VerificationError, InvalidHashError):
            raise WrongCredentials("wrong email or password") from None
        if user is None:
            raise WrongCredentials("wrong email or password")
        return user
