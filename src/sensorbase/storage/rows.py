"""Row ↔ entity conversion shared by the backends (their SQL differs; their rows do not)."""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

from sensorbase.model import (
    ApiKey,
    Bucket,
    BucketStatus,
    FieldSpec,
    Group,
    Organisation,
    Role,
    Scope,
    Series,
    Source,
    User,
)

ORG_COLUMNS = "id, key, name, created_us"
BUCKET_COLUMNS = (
    "id, org_id, key, name, description, meta, created_us, status, retention_us, keep_summaries"
)
SOURCE_COLUMNS = "id, org_id, bucket_id, key, name, meta, schema, created_us"
SERIES_COLUMNS = "id, source_id, field, unit, meta"
USER_COLUMNS = "id, org_id, email, role, created_us, password_hash, token_generation"
GROUP_COLUMNS = "id, org_id, name, meta, created_us"
KEY_COLUMNS = (
    "id, key_id, org_id, name, scopes, bucket_id, server_admin, created_us, revoked_us, secret_hash"
)


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def dump_schema(schema: dict[str, FieldSpec] | None) -> str | None:
    if schema is None:
        return None
    return dump_json(
        {
            name: {"type": spec.type, "unit": spec.unit, "description": spec.description}
            for name, spec in schema.items()
        }
    )


def load_schema(text: str | None) -> dict[str, FieldSpec] | None:
    if text is None:
        return None
    return {name: FieldSpec(**spec) for name, spec in json.loads(text).items()}


def org(row: Any) -> Organisation:
    return Organisation(row[0], row[1], row[2], row[3])


def bucket(row: Any) -> Bucket:
    return Bucket(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        json.loads(row[5]),
        row[6],
        cast(BucketStatus, row[7]),
        row[8],
        bool(row[9]),
    )


def source(row: Any) -> Source:
    return Source(
        row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), load_schema(row[6]), row[7]
    )


def series(row: Any) -> Series:
    return Series(row[0], row[1], row[2], row[3], json.loads(row[4]))


def api_key(row: Any) -> ApiKey:
    scopes = cast(tuple[Scope, ...], tuple(s for s in row[4].split(",") if s))
    return ApiKey(
        id=row[0],
        key_id=row[1],
        org_id=row[2],
        name=row[3],
        scopes=scopes,
        bucket_id=row[5],
        server_admin=bool(row[6]),
        created_us=row[7],
        revoked_us=row[8],
        secret_hash=row[9],
    )


def user(row: Any) -> User:
    return User(row[0], row[1], row[2], cast(Role, row[3]), row[4], row[5], row[6])


def new_token_generation() -> str:
    """A user's token generation: given at creation and at every change of the user."""
    return secrets.token_hex(16)


def group(row: Any, source_ids: tuple[int, ...]) -> Group:
    return Group(row[0], row[1], row[2], json.loads(row[3]), row[4], source_ids)
