"""People who sign in with an email and a password (Madevo's login, the dashboard).

Passwords are low-entropy secrets, so they get argon2id (argon2-cffi's defaults), unlike API
keys (see keys.py). A user acts with the scopes of their role."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sensorbase.errors import WrongCredentials
from sensorbase.model import User
from sensorbase.storage.base import Reader

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps both failures equally slow.
_DUMMY = _hasher.hash("not a password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(reader: Reader, email: str, password: str) -> User:
    user = reader.get_user(email)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        raise WrongCredentials("wrong email or password") from None
    if user is None:
        raise WrongCredentials("wrong email or password")
    return user
