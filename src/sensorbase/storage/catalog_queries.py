"""The catalog side of every backend (base.CatalogReader, base.CatalogTx), written once over
four primitives a backend supplies: `_all`, `_one` (rows of a statement), `_run`, `_run_many`
(a statement for its effect). Statements are catalog_sql's, `?` form; the backend rewrites
them to its driver's if it must. Points are the backend's own business: a delete of catalog
objects calls its `_delete_points` first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sensorbase.model import (
    ApiKey,
    Bucket,
    BucketStatus,
    FieldSpec,
    Group,
    Lifecycle,
    Organisation,
    Scope,
    Series,
    SeriesRef,
    Source,
    Summary,
    TimeRange,
    User,
)
from sensorbase.storage import catalog_sql as sql
from sensorbase.storage import rows
from sensorbase.storage.sql import range_clause, series_select
from sensorbase.times import now_us

Params = Sequence[Any]
_IDS_PER_QUERY = 500  # ids bound in one IN (...): well under SQLite's 32,766 variables
Row = tuple[Any, ...]


class CatalogQueries:
    """The catalog's lookups, for readers and write transactions alike."""

    # The few statements whose text a backend may have to change (see PostgreSQL's).
    user_by_email_sql = sql.USER_BY_EMAIL
    source_series_sql = sql.SOURCE_SERIES
    series_collate = ""  # pins list_series' order to bytes (series_select)

    def _all(self, statement: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    def _one(self, statement: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    def get_setting(self, name: str) -> str | None:
        row = self._one(sql.SETTING, (name,))
        return str(row[0]) if row else None

    def get_org(self, key: str) -> Organisation | None:
        row = self._one(sql.ORG_BY_KEY, (key,))
        return rows.org(row) if row else None

    def get_org_by_id(self, org_id: int) -> Organisation | None:
        row = self._one(sql.ORG_BY_ID, (org_id,))
        return rows.org(row) if row else None

    def list_orgs(self) -> list[Organisation]:
        return [rows.org(r) for r in self._all(sql.ORGS)]

    def get_bucket(self, org_id: int, key: str) -> Bucket | None:
        row = self._one(sql.BUCKET_BY_KEY, (org_id, key))
        return rows.bucket(row) if row else None

    def get_bucket_by_id(self, org_id: int, bucket_id: int) -> Bucket | None:
        row = self._one(sql.BUCKET_BY_ID, (org_id, bucket_id))
        return rows.bucket(row) if row else None

    def list_buckets(self, org_id: int, limit: int, offset: int) -> tuple[list[Bucket], int]:
        found = [rows.bucket(r) for r in self._all(sql.BUCKETS_PAGE, (org_id, limit, offset))]
        return found, self._count(sql.BUCKETS_COUNT, org_id)

    def get_source(self, bucket_id: int, key: str) -> Source | None:
        row = self._one(sql.SOURCE_BY_KEY, (bucket_id, key))
        return rows.source(row) if row else None

    def get_sources(self, bucket_id: int, keys: Sequence[str]) -> dict[str, Source]:
        """The bucket's sources among `keys`, by key (the unknown ones left out): a statement
        per `_IDS_PER_QUERY` keys, where a write naming 5,000 new devices took 5 statements
        for each."""
        found: dict[str, Source] = {}
        for at in range(0, len(keys), _IDS_PER_QUERY):
            part = keys[at : at + _IDS_PER_QUERY]
            for row in self._all(sql.sources_by_keys(len(part)), (bucket_id, *part)):
                source = rows.source(row)
                found[source.key] = source
        return found

    def find_source(self, org_id: int, key: str) -> Source | None:
        row = self._one(sql.SOURCE_IN_ORG, (org_id, key))
        return rows.source(row) if row else None

    def get_source_by_id(self, org_id: int, source_id: int) -> Source | None:
        row = self._one(sql.SOURCE_BY_ID, (org_id, source_id))
        return rows.source(row) if row else None

    def list_sources(self, bucket_id: int, limit: int, offset: int) -> tuple[list[Source], int]:
        found = [rows.source(r) for r in self._all(sql.SOURCES_PAGE, (bucket_id, limit, offset))]
        return found, self._count(sql.SOURCES_COUNT, bucket_id)

    def list_series(
        self,
        org_id: int,
        bucket_id: int | None = None,
        source_keys: list[str] | None = None,
        fields: list[str] | None = None,
    ) -> list[SeriesRef]:
        statement, params = series_select(
            org_id, bucket_id, source_keys, fields, self.series_collate
        )
        return [SeriesRef(*r) for r in self._all(statement, params)]

    def series_lifecycle(self, series_ids: list[int]) -> dict[int, Lifecycle]:
        """The retention of those of the series whose bucket has one."""
        found: dict[int, Lifecycle] = {}
        for at in range(0, len(series_ids), _IDS_PER_QUERY):
            ids = series_ids[at : at + _IDS_PER_QUERY]
            marks = ",".join("?" * len(ids))
            for series_id, retention_us, keep in self._all(sql.SERIES_LIFECYCLE % marks, ids):
                found[series_id] = Lifecycle(retention_us, bool(keep))
        return found

    def retention_buckets(self) -> list[Bucket]:
        """Every bucket with a retention, of every organisation (the retention job's)."""
        return [rows.bucket(r) for r in self._all(sql.RETENTION_BUCKETS)]

    def read_summaries(self, series_id: int, time_range: TimeRange) -> list[Summary]:
        """The series' summaries starting in the range, in time order."""
        clause, params = range_clause(time_range, "start_us")
        found = self._all(sql.SUMMARIES + clause + " ORDER BY start_us", [series_id, *params])
        return [Summary(*r) for r in found]

    def get_series(self, series_id: int) -> Series | None:
        row = self._one(sql.SERIES_BY_ID, (series_id,))
        return rows.series(row) if row else None

    def list_source_series(self, source_id: int) -> list[Series]:
        return [rows.series(r) for r in self._all(self.source_series_sql, (source_id,))]

    def get_key(self, key_id: str) -> ApiKey | None:
        row = self._one(sql.KEY_BY_ID, (key_id,))
        return rows.api_key(row) if row else None

    def list_keys(self, org_id: int, bucket_id: int | None = None) -> list[ApiKey]:
        if bucket_id is None:
            found = self._all(sql.KEYS_OF_ORG, (org_id,))
        else:
            found = self._all(sql.KEYS_OF_BUCKET, (org_id, bucket_id))
        return [rows.api_key(r) for r in found]

    def get_user(self, email: str) -> User | None:
        row = self._one(self.user_by_email_sql, (email,))
        return rows.user(row) if row else None

    def get_user_by_id(self, user_id: int) -> User | None:
        row = self._one(sql.USER_BY_ID, (user_id,))
        return rows.user(row) if row else None

    def list_users(self, org_id: int) -> list[User]:
        return [rows.user(r) for r in self._all(sql.USERS_OF_ORG, (org_id,))]

    def get_group(self, org_id: int, group_id: int) -> Group | None:
        row = self._one(sql.GROUP_BY_ID, (org_id, group_id))
        if row is None:
            return None
        members = self._all(sql.MEMBERS_OF_GROUP, (group_id,))
        return rows.group(row, tuple(m[1] for m in members))

    def list_groups(self, org_id: int) -> list[Group]:
        found = self._all(sql.GROUPS_OF_ORG, (org_id,))
        if not found:
            return []
        members: dict[int, list[int]] = {}
        for group_id, source_id in self._all(sql.MEMBERS_OF_ORG, (org_id,)):
            members.setdefault(group_id, []).append(source_id)
        return [rows.group(r, tuple(members.get(r[0], ()))) for r in found]

    def _count(self, statement: str, param: int) -> int:
        row = self._one(statement, (param,))
        assert row is not None
        return int(row[0])


class CatalogWrites(CatalogQueries):
    """The catalog's changes, inside one write transaction."""

    def _run(self, statement: str, params: Params = ()) -> None:
        raise NotImplementedError

    def _run_many(self, statement: str, params: Iterable[Params]) -> None:
        raise NotImplementedError

    def _creating(self, rows: int) -> None:
        """Called before `rows` sources or series are created on first sight, inside the
        write's transaction: a backend whose nodes write concurrently orders them here."""

    def _delete_points(self, series_sql: str, param: int) -> None:
        """Delete the points (held in this transaction too) of the series `series_sql`
        (catalog_sql.SERIES_OF_*) selects for `param`."""
        raise NotImplementedError

    def _new_id(self, statement: str, params: Params) -> int:
        row = self._one(statement, params)
        assert row is not None
        return int(row[0])

    def create_org(self, key: str, name: str) -> Organisation:
        created = now_us()
        org_id = self._new_id(sql.INSERT_ORG, (key, name, created))
        return Organisation(org_id, key, name, created)

    def delete_org(self, org_id: int) -> None:
        self._delete_points(sql.SERIES_OF_ORG, org_id)
        self._run(sql.DELETE_ORG, (org_id,))

    def create_bucket(
        self, org_id: int, key: str, name: str, description: str, meta: dict[str, Any]
    ) -> Bucket:
        created = now_us()
        bucket_id = self._new_id(
            sql.INSERT_BUCKET, (org_id, key, name, description, rows.dump_json(meta), created)
        )
        return Bucket(bucket_id, org_id, key, name, description, meta, created)

    def update_bucket(
        self,
        bucket_id: int,
        *,
        meta: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
        status: BucketStatus | None = None,
    ) -> None:
        if meta is not None:
            self._run(sql.UPDATE_BUCKET_META, (rows.dump_json(meta), bucket_id))
        if name is not None:
            self._run(sql.UPDATE_BUCKET_NAME, (name, bucket_id))
        if description is not None:
            self._run(sql.UPDATE_BUCKET_DESCRIPTION, (description, bucket_id))
        if status is not None:
            self._run(sql.UPDATE_BUCKET_STATUS, (status, bucket_id))

    def set_bucket_retention(
        self, bucket_id: int, retention_us: int | None, keep_summaries: bool
    ) -> None:
        self._run(sql.UPDATE_BUCKET_RETENTION, (retention_us, keep_summaries, bucket_id))

    def delete_bucket(self, bucket_id: int) -> None:
        self._delete_points(sql.SERIES_OF_BUCKET, bucket_id)
        self._run(sql.DELETE_BUCKET, (bucket_id,))

    def create_source(
        self,
        org_id: int,
        bucket_id: int,
        key: str,
        name: str,
        meta: dict[str, Any],
        schema: dict[str, FieldSpec] | None,
    ) -> Source:
        created = now_us()
        source_id = self._new_id(
            sql.INSERT_SOURCE,
            (org_id, bucket_id, key, name, rows.dump_json(meta), rows.dump_schema(schema), created),
        )
        return Source(source_id, org_id, bucket_id, key, name, meta, schema, created)

    def update_source(
        self,
        source_id: int,
        *,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        schema: dict[str, FieldSpec] | None = None,
    ) -> None:
        if name is not None:
            self._run(sql.UPDATE_SOURCE_NAME, (name, source_id))
        if meta is not None:
            self._run(sql.UPDATE_SOURCE_META, (rows.dump_json(meta), source_id))
        if schema is not None:
            self._run(sql.UPDATE_SOURCE_SCHEMA, (rows.dump_schema(schema), source_id))

    def delete_source(self, source_id: int) -> None:
        self._delete_points(sql.SERIES_OF_SOURCE, source_id)
        self._run(sql.DELETE_SOURCE, (source_id,))

    def get_or_create_source(self, org_id: int, bucket_id: int, key: str) -> Source:
        return self.get_or_create_sources(org_id, bucket_id, [key])[key]

    def get_or_create_sources(
        self, org_id: int, bucket_id: int, keys: Sequence[str]
    ) -> dict[str, Source]:
        """The bucket's sources named `keys`, by key, each created if new."""
        # Looked up first: the sources usually exist, and a lookup is one statement.
        found = self.get_sources(bucket_id, keys)
        new = sorted(set(keys) - found.keys())  # one lock order on every node
        if new:
            self._creating(len(new))
            created_us = now_us()
            self._run_many(
                sql.INSERT_SOURCE_IF_NEW, [(org_id, bucket_id, k, k, created_us) for k in new]
            )
            found.update(self.get_sources(bucket_id, new))  # (another node's, where it won)
        return found

    def get_or_create_series(
        self,
        source_id: int,
        fields: list[str],
        units: dict[str, str | None] | None = None,
        metas: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, int]:
        units, metas = units or {}, metas or {}
        wanted = [(source_id, f, units.get(f), metas.get(f, {})) for f in fields]
        return {f: i for (_, f), i in self.get_or_create_series_of(wanted).items()}

    def get_or_create_series_of(
        self, wanted: Sequence[tuple[int, str, str | None, dict[str, Any]]]
    ) -> dict[tuple[int, str], int]:
        """The ids of the series (source_id, field, unit, meta) names, by (source_id, field),
        each created with its unit and meta if new."""
        if not wanted:
            return {}
        # One lock order on every node.
        named = sorted({(s, f): (u, m) for s, f, u, m in wanted}.items(), key=lambda x: x[0])
        sources = sorted({s for (s, _), _ in named})
        ids = self._series_ids(sources)
        new = [(key, spec) for key, spec in named if key not in ids]
        if new:  # (looked up first: a write's series usually exist)
            self._creating(len(new))
            self._run_many(
                sql.INSERT_SERIES_IF_NEW, [(s, f, u, rows.dump_json(m)) for (s, f), (u, m) in new]
            )
            ids = self._series_ids(sorted({s for (s, _), _ in new}), ids)
        return {key: ids[key] for key, _ in named}

    def _series_ids(
        self, sources: list[int], into: dict[tuple[int, str], int] | None = None
    ) -> dict[tuple[int, str], int]:
        """The ids of every series of `sources`, by (source_id, field)."""
        ids = {} if into is None else into
        for at in range(0, len(sources), _IDS_PER_QUERY):
            part = sources[at : at + _IDS_PER_QUERY]
            for source_id, field, series_id in self._all(sql.series_of_sources(len(part)), part):
                ids[(int(source_id), str(field))] = int(series_id)
        return ids

    def update_series(self, series_id: int, *, meta: dict[str, Any]) -> None:
        self._run(sql.UPDATE_SERIES_META, (rows.dump_json(meta), series_id))

    def create_key(
        self,
        org_id: int,
        key_id: str,
        secret_hash: str,
        name: str,
        scopes: tuple[Scope, ...],
        bucket_id: int | None,
        server_admin: bool,
    ) -> ApiKey:
        created = now_us()
        row_id = self._new_id(
            sql.INSERT_KEY,
            (key_id, org_id, name, ",".join(scopes), bucket_id, server_admin, created, secret_hash),
        )
        return ApiKey(
            row_id,
            key_id,
            org_id,
            name,
            scopes,
            bucket_id,
            server_admin,
            created,
            None,
            secret_hash,
        )

    def revoke_key(self, key_id: str, at_us: int) -> None:
        self._run(sql.REVOKE_KEY, (at_us, key_id))
        self._run(sql.DELETE_REFRESH_TOKENS_OF_KEY, (key_id,))

    def put_refresh_token(self, token_hash: str, key_id: str, expires_us: int) -> None:
        self._run(sql.INSERT_REFRESH_TOKEN, (token_hash, key_id, expires_us))

    def take_refresh_token(self, token_hash: str, now_us: int) -> str | None:
        row = self._one(sql.TAKE_REFRESH_TOKEN, (token_hash,))
        self._run(sql.DELETE_EXPIRED_REFRESH_TOKENS, (now_us,))
        if row is None or row[1] < now_us:
            return None
        return str(row[0])

    def create_user(self, org_id: int, email: str, password_hash: str, role: str) -> User:
        created = now_us()
        generation = rows.new_token_generation()
        user_id = self._new_id(
            sql.INSERT_USER, (org_id, email, password_hash, role, created, generation)
        )
        return rows.user((user_id, org_id, email, role, created, password_hash, generation))

    def update_user(
        self, user_id: int, *, role: str | None = None, password_hash: str | None = None
    ) -> User | None:
        row = self._one(
            sql.UPDATE_USER, (role, password_hash, rows.new_token_generation(), user_id)
        )
        return rows.user(row) if row else None

    def delete_user(self, user_id: int) -> None:
        self._run(sql.DELETE_USER, (user_id,))

    def create_group(
        self, org_id: int, name: str, meta: dict[str, Any], source_ids: list[int]
    ) -> Group:
        created = now_us()
        group_id = self._new_id(sql.INSERT_GROUP, (org_id, name, rows.dump_json(meta), created))
        self.set_group_members(group_id, source_ids)
        return Group(group_id, org_id, name, meta, created, tuple(sorted(set(source_ids))))

    def set_group_members(self, group_id: int, source_ids: list[int]) -> None:
        self._run(sql.DELETE_GROUP_MEMBERS, (group_id,))
        self._run_many(sql.INSERT_GROUP_MEMBER, [(group_id, s) for s in source_ids])

    def delete_group(self, group_id: int) -> None:
        self._run(sql.DELETE_GROUP, (group_id,))

    def put_setting(self, name: str, value: str) -> str:
        self._run(sql.INSERT_SETTING_IF_NEW, (name, value))
        stored = self.get_setting(name)
        assert stored is not None
        return stored

    def set_setting(self, name: str, value: str) -> None:
        self._run(sql.SET_SETTING, (name, value))
