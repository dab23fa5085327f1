"""The Store protocol and its narrow sides, split as Prometheus splits Appendable from Querier:

    WriteTx = CatalogTx + PointAppender   one transaction at a time, taken by the write queue
    Reader  = CatalogReader + PointReader  any thread

Code that only appends points, or only reads the catalog, asks for that side alone. A backend
passes tests/storage/test_contract.py or it does not ship.

An id (organisation, bucket, source, series, key, user, group) is never given twice, not even
after its row is deleted: tokens, caches on other nodes and clients name things by id, and must
never reach a newer thing by an older name. A refresh token goes with its key's row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sensorbase.model import (
    AggregateRow,
    ApiKey,
    Bucket,
    BucketStatus,
    FieldSpec,
    Group,
    Lifecycle,
    Organisation,
    PointColumns,
    ResolvedBatch,
    ResolvedPoint,
    Scope,
    Series,
    SeriesRef,
    Source,
    Summary,
    TimeRange,
    User,
)
from sensorbase.storage.alerts_queries import (
    DeliveryRow,
    EventRow,
    RuleRow,
    StateRow,
    WebhookRow,
)
from sensorbase.storage.transfer import Loader, Snapshot


class CatalogTx(Protocol):
    """The catalog inside the open write transaction. Lookups see its own uncommitted work."""

    def get_setting(self, name: str) -> str | None: ...
    def get_org(self, key: str) -> Organisation | None: ...

    # organisations, buckets, sources, series
    def create_org(self, key: str, name: str) -> Organisation: ...
    def delete_org(self, org_id: int) -> None: ...
    def create_bucket(
        self, org_id: int, key: str, name: str, description: str, meta: dict[str, Any]
    ) -> Bucket: ...
    def update_bucket(
        self,
        bucket_id: int,
        *,
        meta: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
        status: BucketStatus | None = None,
    ) -> None: ...
    def set_bucket_retention(
        self, bucket_id: int, retention_us: int | None, keep_summaries: bool
    ) -> None: ...
    def delete_bucket(self, bucket_id: int) -> None: ...
    def get_bucket(self, org_id: int, key: str) -> Bucket | None: ...
    def list_buckets(self, org_id: int, limit: int, offset: int) -> tuple[list[Bucket], int]:
        """As Reader.list_buckets, inside the transaction (uniqueness checks by name)."""
        ...

    def create_source(
        self,
        org_id: int,
        bucket_id: int,
        key: str,
        name: str,
        meta: dict[str, Any],
        schema: dict[str, FieldSpec] | None,
    ) -> Source: ...
    def update_source(
        self,
        source_id: int,
        *,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        schema: dict[str, FieldSpec] | None = None,
    ) -> None: ...
    def delete_source(self, source_id: int) -> None: ...
    def get_source(self, bucket_id: int, key: str) -> Source | None: ...
    def list_sources(self, bucket_id: int, limit: int, offset: int) -> tuple[list[Source], int]:
        """As Reader.list_sources, inside the transaction."""
        ...

    def get_sources(self, bucket_id: int, keys: Sequence[str]) -> dict[str, Source]:
        """The bucket's sources among `keys`, by key (the unknown ones left out)."""
        ...

    def get_or_create_source(self, org_id: int, bucket_id: int, key: str) -> Source: ...
    def get_or_create_sources(
        self, org_id: int, bucket_id: int, keys: Sequence[str]
    ) -> dict[str, Source]:
        """The bucket's sources named `keys`, by key, each created if new."""
        ...

    def get_or_create_series_of(
        self, wanted: Sequence[tuple[int, str, str | None, dict[str, Any]]]
    ) -> dict[tuple[int, str], int]:
        """Ids of the series (source_id, field, unit, meta) names, by (source_id, field),
        creating the missing ones (with their unit and meta)."""
        ...

    def get_or_create_series(
        self,
        source_id: int,
        fields: list[str],
        units: dict[str, str | None] | None = None,
        metas: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, int]:
        """Ids of the fields' series, creating the missing ones (with their unit and meta)."""
        ...

    def update_series(self, series_id: int, *, meta: dict[str, Any]) -> None: ...
    def get_series(self, series_id: int) -> Series | None: ...
    def list_source_series(self, source_id: int) -> list[Series]:
        """As Reader.list_source_series, inside the transaction."""
        ...

    # credentials
    def create_key(
        self,
        org_id: int,
        key_id: str,
        secret_hash: str,
        name: str,
        scopes: tuple[Scope, ...],
        bucket_id: int | None,
        server_admin: bool,
    ) -> ApiKey: ...
    def revoke_key(self, key_id: str, at_us: int) -> None: ...
    def list_keys(self, org_id: int, bucket_id: int | None = None) -> list[ApiKey]:
        """As Reader.list_keys, inside the transaction."""
        ...

    def put_refresh_token(self, token_hash: str, key_id: str, expires_us: int) -> None: ...
    def take_refresh_token(self, token_hash: str, now_us: int) -> str | None:
        """Consume a refresh token (single use): the key id it was minted for, or None."""
        ...

    # users and groups
    def create_user(self, org_id: int, email: str, password_hash: str, role: str) -> User:
        """A new user, with a new random token generation (and an id never given before)."""
        ...

    def update_user(
        self, user_id: int, *, role: str | None = None, password_hash: str | None = None
    ) -> User | None:
        """Change what is given, and always give the user a new token generation (ending
        every token minted before); the user as it is now, or None if there is none."""
        ...

    def delete_user(self, user_id: int) -> None: ...
    def create_group(
        self, org_id: int, name: str, meta: dict[str, Any], source_ids: list[int]
    ) -> Group: ...
    def set_group_members(self, group_id: int, source_ids: list[int]) -> None: ...
    def delete_group(self, group_id: int) -> None: ...

    def put_setting(self, name: str, value: str) -> str:
        """Store `value` unless the setting exists; return what is stored."""
        ...

    def set_setting(self, name: str, value: str) -> None:
        """Store `value`, replacing what the setting held."""
        ...


class AlertReader(Protocol):
    """The alert and webhook tables (storage/alerts_queries.py)."""

    def list_alert_rules(self, org_id: int | None = None) -> list[RuleRow]: ...
    def get_alert_rule(self, org_id: int, key: str) -> RuleRow | None: ...
    def list_alert_states(self, rule_id: int | None = None) -> list[StateRow]: ...
    def list_alert_events(
        self, org_id: int, rule_id: int | None, limit: int, before_id: int | None = None
    ) -> list[EventRow]: ...
    def list_webhooks(self, org_id: int | None = None) -> list[WebhookRow]: ...
    def get_webhook(self, org_id: int, key: str) -> WebhookRow | None: ...
    def list_deliveries(
        self,
        org_id: int,
        limit: int,
        *,
        webhook_key: str | None = None,
        rule_key: str | None = None,
        status: str | None = None,
    ) -> list[DeliveryRow]: ...
    def get_delivery(self, org_id: int, delivery_id: str) -> DeliveryRow | None: ...
    def next_delivery_us(self) -> int | None: ...


class AlertTx(AlertReader, Protocol):
    """Alert and webhook changes inside the write transaction."""

    def swap_setting(self, name: str, value: str) -> str | None:
        """Store `value`; the value it replaces, read under a lock until the commit."""
        ...

    def create_alert_rule(
        self, org_id: int, bucket_id: int, key: str, spec: dict[str, Any], timer: bool, now_us: int
    ) -> None: ...
    def update_alert_rule(self, rule_id: int, spec: dict[str, Any], timer: bool) -> None: ...
    def reset_alert_states(self, rule_id: int, at_us: int) -> int: ...
    def delete_alert_rule(self, rule_id: int) -> None: ...
    def claim_timer_rules(self, now_us: int, every_us: int) -> list[int]: ...
    def lock_alert_state(self, rule_id: int, series_id: int, now_us: int) -> StateRow: ...
    def put_alert_state(self, state: StateRow, from_state: str, at_us: int) -> None: ...
    def create_webhook(
        self,
        org_id: int,
        bucket_id: int | None,
        key: str,
        url: str,
        events: tuple[str, ...],
        secret: str,
        now_us: int,
    ) -> None: ...
    def update_webhook(
        self, webhook_id: int, url: str, events: tuple[str, ...], secret: str
    ) -> None: ...
    def redirect_deliveries(
        self,
        org_id: int,
        url: str | None,
        secret: str,
        *,
        webhook_key: str | None = None,
        rule_key: str | None = None,
    ) -> None: ...
    def delete_webhook(self, webhook_id: int) -> None: ...
    def purge_alert_history(self, before_us: int, limit: int) -> tuple[int, int]: ...
    def add_delivery(self, delivery: DeliveryRow) -> None: ...
    def claim_deliveries(self, now_us: int, lease_us: int, limit: int) -> list[DeliveryRow]: ...
    def finish_delivery(
        self,
        delivery_id: str,
        *,
        status: str,
        next_us: int,
        http_status: int | None,
        error: str | None,
        done_us: int | None,
    ) -> None: ...


class PointAppender(Protocol):
    """Points into the open write transaction."""

    def append(self, batch: ResolvedBatch | ResolvedPoint) -> None:
        """Upsert points (a batch or one): the same (series, time) again replaces the value."""
        ...


class PointLifecycle(Protocol):
    """Points leaving the open write transaction (docs/lifecycle.md): in the write queue's
    order, so a delete removes what was acknowledged before it and not what comes after."""

    def delete_points(self, series_ids: list[int], time_range: TimeRange) -> None:
        """Delete the series' points in the range, wherever they are held."""
        ...

    def expire_points(
        self, series_ids: list[int], cutoff_us: int, keep_summaries: bool, max_chunks: int
    ) -> tuple[int, int]:
        """Remove the series' points before `cutoff_us`, at most `max_chunks` chunks (SQLite)
        or summary periods (PostgreSQL) of them, leaving their summaries if asked; the chunks
        and the points removed (fewer chunks than `max_chunks`: nothing is left to expire)."""
        ...

    def reclaim_space(self) -> int:
        """Give back a bounded part of the space removed points left (SQLite: free pages to
        the file system); how much is left to give back (0: nothing, or the backend's own
        vacuum does it)."""
        ...


class WriteTx(CatalogTx, PointAppender, PointLifecycle, AlertTx, Protocol):
    """One open transaction on the writer connection."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit: on an exception inside, only its work is undone."""
        ...


class Writer(Protocol):
    # True when a commit is a short local operation that the event loop submitting the writes
    # may run itself, with `commit(durable=False)` and then `when_durable` (SQLite). False when
    # it waits on a network (PostgreSQL): the write queue then commits on its own thread.
    inline: bool

    def begin(self) -> WriteTx: ...
    def commit(self, durable: bool = True) -> None:
        """Commit the open transaction; with `durable` (always, for a writer that is not
        `inline`) return only once it is as durable as the settings ask."""
        ...

    def rollback(self) -> None: ...


class InlineWriter(Writer, Protocol):
    """A writer whose `inline` is True."""

    def when_durable(self, done: Callable[[OSError | None], None]) -> None:
        """Call `done` on the running event loop once every commit so far is durable:
        `done(None)`, or `done(error)` if it could not be made so."""
        ...

    def try_lock(self) -> bool:
        """Take what `begin` waits for (another process's commit or fold) if it is free at
        once; False if it is not (`wait_lock`, on another thread, then)."""
        ...

    def wait_lock(self) -> None:
        """Wait for what `begin` waits for and take it (blocking: not on the event loop)."""
        ...

    def unlock(self) -> None:
        """Let go of what `try_lock` or `wait_lock` took, when no transaction followed."""
        ...


class CatalogReader(Protocol):
    """Catalog lookups on the calling thread's own connection. Every lookup of tenant data
    takes the organisation it must belong to."""

    def get_setting(self, name: str) -> str | None: ...
    def get_org(self, key: str) -> Organisation | None: ...
    def get_org_by_id(self, org_id: int) -> Organisation | None: ...
    def list_orgs(self) -> list[Organisation]: ...
    def get_bucket(self, org_id: int, key: str) -> Bucket | None: ...
    def get_bucket_by_id(self, org_id: int, bucket_id: int) -> Bucket | None: ...
    def list_buckets(self, org_id: int, limit: int, offset: int) -> tuple[list[Bucket], int]: ...
    def get_source(self, bucket_id: int, key: str) -> Source | None: ...
    def find_source(self, org_id: int, key: str) -> Source | None:
        """A source by key anywhere in the organisation (the first by id if several)."""
        ...

    def list_sources(self, bucket_id: int, limit: int, offset: int) -> tuple[list[Source], int]: ...
    def list_series(
        self,
        org_id: int,
        bucket_id: int | None = None,
        source_keys: list[str] | None = None,
        fields: list[str] | None = None,
    ) -> list[SeriesRef]: ...
    def get_series(self, series_id: int) -> Series | None: ...
    def list_source_series(self, source_id: int) -> list[Series]: ...
    def get_key(self, key_id: str) -> ApiKey | None: ...
    def list_keys(self, org_id: int, bucket_id: int | None = None) -> list[ApiKey]: ...
    def get_user(self, email: str) -> User | None: ...
    def get_user_by_id(self, user_id: int) -> User | None: ...
    def list_users(self, org_id: int) -> list[User]: ...
    def get_group(self, org_id: int, group_id: int) -> Group | None: ...
    def list_groups(self, org_id: int) -> list[Group]: ...
    def get_source_by_id(self, org_id: int, source_id: int) -> Source | None: ...
    def series_lifecycle(self, series_ids: list[int]) -> dict[int, Lifecycle]:
        """The retention of those of the series whose bucket has one."""
        ...

    def retention_buckets(self) -> list[Bucket]:
        """Every bucket with a retention, of every organisation (the retention job's)."""
        ...


class PointReader(Protocol):
    """Points (and what the store holds) on the calling thread's own connection."""

    def bucket_stats(self, bucket_id: int) -> dict[str, int]:
        """Sources, points and live keys of a bucket (its points are why it is here)."""
        ...

    def read_range(
        self,
        series_id: int,
        time_range: TimeRange,
        limit: int,
        order: str = "asc",
        offset: int = 0,
    ) -> PointColumns: ...
    def read_values(self, series_id: int, time_range: TimeRange, limit: int) -> PointColumns:
        """The first `limit` points of the range in time order, times and values only (no
        extras): what the aggregates that need every point read (query/reducers.py), in the
        backend's fastest bulk form."""
        ...

    def read_latest(self, series_ids: list[int], n: int) -> list[PointColumns]:
        """The newest `n` points of each series, newest first, in one read (one snapshot, one
        round trip where the backend can): what a dashboard's "latest values" asks of many
        series at once."""
        ...

    def read_range_by_value(
        self, series_id: int, time_range: TimeRange, limit: int, order: str = "asc"
    ) -> PointColumns:
        """The first `limit` points of the range ordered by value (ties by time), that order."""
        ...

    def count(self, series_id: int, time_range: TimeRange) -> int: ...
    def aggregate(
        self, series_id: int, time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> AggregateRow: ...
    def aggregate_fixed(
        self,
        series_id: int,
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> list[AggregateRow]:
        """Per interval [origin + k*every, origin + (k+1)*every) that holds points."""
        ...

    def aggregate_bounds(
        self, series_id: int, bounds: list[int], aggregates: tuple[str, ...]
    ) -> list[AggregateRow]:
        """Per interval [bounds[i], bounds[i+1]) that holds points (calendar buckets), in one
        read."""
        ...

    def m4(self, series_id: int, time_range: TimeRange, width: int) -> PointColumns:
        """The M4 of the (bounded) range cut into `width` columns (storage/m4.py): per column
        holding points, its first, min, max and last points, in time order, each once."""
        ...

    def read_summaries(self, series_id: int, time_range: TimeRange) -> list[Summary]:
        """What expired points of the series left (docs/lifecycle.md), of those starting in
        the range, in time order."""
        ...

    def disk_bytes(self) -> int: ...
    def storage_gauges(self) -> dict[str, tuple[str, float]]:
        """The store's own state for /metrics: name (after `sensorbase_`) -> (help, value)."""
        ...


class Reader(CatalogReader, PointReader, AlertReader, Protocol):
    """Both sides of reading, on the calling thread's own connection."""


class Store(Protocol):
    # Whether a light read (query/service.py `light`) may run on the event loop: it then
    # waits for nothing but its own work (no connection pool, no network round trip).
    reads_on_loop: bool

    def open(self) -> None:
        """Create or migrate the schema."""
        ...

    def close(self) -> None: ...
    def writer(self) -> Writer:
        """The write connection: used by the write queue (write_queue.py), one group at a
        time."""
        ...

    def reader(self) -> Reader:
        """A reader bound to the calling thread."""
        ...

    def expire_apart(
        self, series_ids: list[int], cutoff_us: int, keep_summaries: bool, max_chunks: int
    ) -> tuple[int, int] | None:
        """As WriteTx.expire_points, in a transaction of the backend's own beside the write
        queue where it can run there without holding writes up (PostgreSQL); None where it
        cannot (SQLite: one writer), and then nothing was done."""
        ...

    def fold_points(self) -> int:
        """Fold the write log into chunks now (the retention job, tools, tests); the points
        folded."""
        ...

    def retention_lease(self) -> AbstractContextManager[bool]:
        """Whether this process may run a retention pass now (one at a time per store, of
        every process and node sharing it), held for the pass."""
        ...

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """Everything the store holds at one moment (`sensorbase dump`), while writes go on."""
        ...

    def loader(self) -> AbstractContextManager[Loader]:
        """Catalog rows into an empty store in one write transaction (`sensorbase load`)."""
        ...
