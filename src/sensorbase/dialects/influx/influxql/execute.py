"""Running a query's statements in order, each answered or failed on its own (a failed
statement ends the query, as InfluxDB stops at the first error)."""

from __future__ import annotations

import time
from typing import Any

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.catalog.buckets import EVERY
from sensorbase.dialects.influx.influxql import ast, show
from sensorbase.dialects.influx.influxql.answer import Series, error_json, result_json
from sensorbase.dialects.influx.influxql.select import Select
from sensorbase.dialects.influx.influxql.series import InfluxSeries, StatementError, load
from sensorbase.errors import Conflict, Forbidden, InvalidInput, NotFound
from sensorbase.query.service import QueryService


class Execution:
    def __init__(
        self,
        who: Principal,
        db: str | None,
        catalog: Catalog,
        query: QueryService,
        *,
        read_only: bool = False,
    ) -> None:
        self.who = who
        self.read_only = read_only  # a GET: SELECT and SHOW only, as InfluxDB has it
        self.db = db or None
        self.catalog = catalog
        self.query = query
        self.now_ns = time.time_ns()
        self._series: dict[str, list[InfluxSeries]] = {}

    async def run(self, statements: list[ast.Statement], epoch: str | None) -> list[Any]:
        results = []
        for i, stmt in enumerate(statements):
            try:
                found = await self.statement(stmt)
            except StatementError as exc:
                results.append(error_json(i, str(exc)))
                break
            except NotFound as exc:
                if exc.what != "bucket":
                    raise
                results.append(error_json(i, f"database not found: {exc.name}"))
                break
            except InvalidInput as exc:
                results.append(error_json(i, exc.detail))
                break
            results.append(result_json(i, found, isinstance(stmt, ast.Select), epoch))
        return results

    async def series(self, db: str | None) -> list[InfluxSeries]:
        if db is None:
            raise StatementError("database name required")
        if db not in self._series:
            self._series[db] = await load(self.who, db, self.catalog, self.query)
        return self._series[db]

    async def statement(self, stmt: ast.Statement) -> list[Series]:
        if isinstance(stmt, ast.CreateDatabase):
            await self.create_database(stmt)
            return []
        if isinstance(stmt, ast.ShowDatabases):
            buckets, _ = await self.catalog.buckets.page(self.who, EVERY, 0)
            return show.databases(sorted(b.key for b in buckets))
        if isinstance(stmt, ast.ShowRetentionPolicies):
            await self.series(stmt.database or self.db)  # the database must exist
            return show.retention_policies()
        if isinstance(stmt, ast.Select):
            named = {s.database for s in stmt.sources if s.database}
            if len(named) > 1:
                raise StatementError("a statement reads one database here")
            series = await self.series(named.pop() if named else self.db)
            return await Select(stmt, series, self.query, self.now_ns).run()
        series = await self.series(self.db)
        if isinstance(stmt, ast.ShowMeasurements):
            return show.measurements(stmt, series)
        if isinstance(stmt, ast.ShowTagKeys):
            return show.tag_keys(stmt, series)
        if isinstance(stmt, ast.ShowTagValues):
            return show.tag_values(stmt, series)
        if isinstance(stmt, ast.ShowFieldKeys):
            return show.field_keys(stmt, series)
        return show.series_keys(stmt, series)

    async def create_database(self, stmt: ast.CreateDatabase) -> None:
        """InfluxDB's CREATE DATABASE (Telegraf sends it at start): nothing to do for a bucket
        the key can already write or read, else a new bucket, which needs an admin key."""
        if self.read_only:
            raise StatementError(f"{stmt} needs a POST request: a GET runs SELECT and SHOW only")
        for scope in ("data:write", "data:read"):
            try:
                await self.catalog.buckets.get(self.who, stmt.name, scope)
                return
            except (Forbidden, NotFound):
                continue
        try:
            await self.catalog.buckets.create(self.who, stmt.name, stmt.name)
        except Forbidden:
            raise StatementError(
                f"error authorizing query: not authorized to execute statement '{stmt}', "
                "requires admin privilege"
            ) from None
        except Conflict:
            pass  # made meanwhile by another request: there, as asked
