"""KeyRing.verify (auth/keys.py) on a real store: a key's secret verified once is compared with
the one remembered from then on, and that memory never lets anything through that hashing the
secret would refuse."""

from __future__ import annotations

import pytest

from sensorbase.auth.keys import NewKey
from sensorbase.errors import Unauthorized, WrongCredentials
from sensorbase.services import Services


def bootstrap(services: Services) -> NewKey:
    key = services.bootstrap_key  # type: ignore[attr-defined]
    assert isinstance(key, NewKey)
    return key


def test_a_right_secret_verifies_again_and_a_wrong_one_never(services: Services) -> None:
    key = bootstrap(services)
    ring = services.keys
    first = ring.verify(key.key_id, key.secret)
    assert ring.verify(key.key_id, key.secret) == first  # (from the remembered secret)
    for wrong in (key.secret[:-1], key.secret + "x", "", key.secret[:-1] + "é"):
        with pytest.raises(WrongCredentials):
            ring.verify(key.key_id, wrong)
    assert ring.verify(key.key_id, key.secret) == first


async def test_a_revoked_key_is_refused_after_its_secret_was_remembered(
    services: Services,
) -> None:
    key = bootstrap(services)
    ring = services.keys
    who = ring.verify(key.key_id, key.secret)
    _, other = await services.catalog.keys.create(who, "other", ("admin",))
    assert ring.verify(other.key_id, other.secret).key_id == other.key_id
    await services.catalog.keys.revoke(who, other.key_id)
    with pytest.raises(Unauthorized):
        ring.verify(other.key_id, other.secret)


def test_a_refreshed_entry_hashes_the_secret_again(services: Services) -> None:
    """Past the cache's lifetime the key is read again: what was remembered for the old entry
    is not used for the new one."""
    key = bootstrap(services)
    ring = services.keys
    ring.verify(key.key_id, key.secret)
    remembered = ring._verified[key.key_id][0]
    now = ring.clock()
    ring.clock = lambda: now + services.settings.key_cache_s + 1
    ring.verify(key.key_id, key.secret)
    assert ring._verified[key.key_id][0] is not remembered
    with pytest.raises(WrongCredentials):
        ring.verify(key.key_id, key.secret + "x")


async def test_a_remembered_token_is_refused_once_its_key_is_revoked_or_read_again(
    services: Services,
) -> None:
    """`verify_token` finds a token verified before by look-ups alone while its cache entry is
    the one it was verified against; a wrong token, a revocation, a refreshed entry and a
    forgotten one are each verified as `verify` would (refused, or hashed again)."""
    key = bootstrap(services)
    ring = services.keys
    who = ring.verify_token(key.token)
    assert who is not None and who == ring.verify_token(key.token)
    assert ring.verify_token("not-an-api-key") is None
    for wrong in (key.token[:-1], key.token + "x", key.token[:-1] + "é"):
        with pytest.raises(WrongCredentials):
            ring.verify_token(wrong)
        assert wrong not in ring._tokens
    remembered = ring._tokens[key.token][1]
    now = ring.clock()
    ring.clock = lambda: now + services.settings.key_cache_s + 1
    assert ring.verify_token(key.token) == who
    assert ring._tokens[key.token][1] is not remembered  # (the new entry's)
    ring.clock = lambda: now
    _, other = await services.catalog.keys.create(who, "other", ("admin",))
    assert ring.verify_token(other.token) is not None
    ring.forget(other.key_id)
    assert ring.verify_token(other.token) is not None  # (read and verified again)
    await services.catalog.keys.revoke(who, other.key_id)
    with pytest.raises(Unauthorized):
        ring.verify_token(other.token)
