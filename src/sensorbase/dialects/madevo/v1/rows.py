"""The strings-only rows of a /api/v1 data source, decoded by the one Madevo decoder (schema.py
plans the columns, records.py builds the points) and written through the one ingest pipeline,
with partial success: the valid rows are kept, every skipped row is named by its index and
why. Both the insert route and the import of an uploaded file write through `insert_rows`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensorbase.auth.keys import Principal
from sensorbase.dialects.madevo.records import TIMESTAMP, build
from sensorbase.dialects.madevo.schema import observe, plan, schema_of
from sensorbase.dialects.madevo.v1.config import Config, config_of
from sensorbase.dialects.madevo.v1.timeformat import parser
from sensorbase.dialects.madevo.write import schema_keeper
from sensorbase.errors import Problem
from sensorbase.ingest.pipeline import Ingest, WriteOptions
from sensorbase.model import Bucket

_ROUNDS = 3  # plan, drop the rows it refuses, plan again: the second round is clean in practice


@dataclass(slots=True)
class Inserted:
    rows: int = 0
    points: int = 0
    skipped: list[Problem] = field(default_factory=list)  # index: the row's, in the request
    kept: list[int] = field(default_factory=list)  # indexes of the rows stored

    def message(self) -> str:
        if not self.skipped:
            return "datasource updated"
        rows = len({p.index for p in self.skipped})
        named = "; ".join(f"{worded(p)} at index {p.index}" for p in self.skipped)
        return f"inserted {self.rows} rows, skipped {rows} rows: {named}"


def worded(problem: Problem) -> str:
    return f"column '{problem.field}' {problem.reason}" if problem.field else problem.reason


def precheck(rows: list[Any], config: Config) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Each row as the decoder reads it (its time under `timestamp`), and what is wrong with
    the rows that cannot be: not an object, a value not a string, no time or meta field."""
    out: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(Problem("row is not an object", None, i))
            out.append({})
            continue
        wrong = [name for name, value in row.items() if not isinstance(value, str)]
        for name in wrong:
            problems.append(Problem(f"value of '{name}' is not a string", None, i))
        stamp = row.get(config.timefield)
        if not isinstance(stamp, str) or not stamp.strip():
            problems.append(Problem("time field is empty", None, i))
        if config.metafield is not None:
            meta = row.get(config.metafield)
            if not isinstance(meta, str) or not meta.strip():
                problems.append(Problem("meta field is empty", None, i))
        if TIMESTAMP in row and config.timefield != TIMESTAMP:
            problems.append(Problem(f"'{TIMESTAMP}' is reserved for the time field", None, i))
        decoded = {
            (TIMESTAMP if name == config.timefield else name): value
            for name, value in row.items()
            if value != "" or name == config.timefield  # an empty string: no value
        }
        out.append(decoded)
    return out, problems


async def insert_rows(who: Principal, ingest: Ingest, bucket: Bucket, rows: list[Any]) -> Inserted:
    """Decode and write the rows that are valid; name the others."""
    config = config_of(bucket)
    parse = parser(config.timeformat)
    decoded, problems = precheck(rows, config)
    bad = {p.index for p in problems}
    key = bucket.key
    schema = schema_of(bucket)
    for _ in range(_ROUNDS):
        good = [i for i in range(len(rows)) if i not in bad]
        if not good:
            break
        records = [decoded[i] for i in good]
        seen = observe(records)
        seen.by_majority = True
        planned = plan(schema, seen, records, key)
        skip = {p.index for p in seen.problems + planned.problems if p.index is not None}
        built = build(records, planned.roles, seen.narrow, key, skip, parse)
        found = seen.problems + planned.problems + built.problems
        if found:
            for p in found:
                problems.append(_in_request(p, good, config))
                bad.add(good[p.index or 0])
            continue
        options = WriteOptions(
            partial=True,
            bucket_meta=(key, schema_keeper(planned, seen, records, key)),
            origin=np.array(built.row, np.int32),
        )
        outcome = await ingest.write(who, built.batch, options)
        for p in outcome.rejected:
            problems.append(_in_request(p, good, config))
            bad.add(good[p.index or 0])
        kept = [i for i in good if i not in bad]
        problems.sort(key=lambda p: p.index or 0)
        return Inserted(len(kept), outcome.receipt.points, problems, kept)
    problems.sort(key=lambda p: p.index or 0)
    return Inserted(0, 0, problems, [])


def _in_request(problem: Problem, good: list[int], config: Config) -> Problem:
    """A decoder's or the pipeline's problem, named by the row's index in the request and
    the data source's own column names."""
    column, reason = problem.field, problem.reason
    if column in (TIMESTAMP, "time"):
        column = None
        reason = reason if reason.startswith("time field") else f"time field {reason}"
    return Problem(reason, column, good[problem.index or 0], problem.kind)
