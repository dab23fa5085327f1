"""Databoom: `POST /v1/signals/push`, and the read side `GET /v1/signals`, `POST /v1/chart`.

The vendor's sample payloads (seed 003), with its placeholders filled in. List form, every
signal at the body's `date` (or at reception when it is absent):

    {"device": "6541469", "date": "2020-02-05T02:59:33.000+0000",
     "signals": [{"name": "pressure", "value": 1019},
                 {"name": "temperature", "value": 21.5,
                  "meta": {"description": "Air temperature", "unit": "°C",
                           "type": "number", "tags": ["outdoor"]}}]}

History form, each signal keyed by its token, with its own dated values:

    {"device": "6541469", "date": "2020-02-05T02:59:33.000+0000",
     "signals": {"pressure": {
         "description": "Barometric pressure",
         "history": [{"date": "2020-02-05T01:00:00.000+0000", "value": 1017},
                     {"date": "2020-02-05T02:00:00.000+0000", "value": 1018}]}}}

Mapping: the device token is the key of an existing Sensorbase source (anywhere in the
principal's organisation, or in its bucket for a bucket-limited key); a signal token is a field
of that source, created on first sight with its meta. Dates are read as JavaScript's `Date`
would read them (`dates.parse_date`); a date without a zone is UTC. Errors are
`{"message": ...}` (plus `errors`, one entry per problem). See docs/dialects/databoom.md.

    errors.py    the error shape and words, the router factory, the bearer credential
    dates.py     JavaScript-style date strings and epoch milliseconds
    signals.py   the push body, decoded into columns
    write.py     POST /v1/signals/push
    templates.py POST /v1/signals/push/<unique value>: a device made from a template
    creation.py  POST /v1/signals/ (a signal made ahead of values), PATCH /v1/signals/<id>
    read.py      GET /v1/signals, POST /v1/chart

Token permissions: Read is the scope data:read, Publish data:write, Create catalog:write.
"""

from __future__ import annotations

from fastapi import APIRouter

from sensorbase.dialects.databoom import creation, read, templates, write
from sensorbase.dialects.lane import Lane


def router() -> APIRouter:
    combined = APIRouter()
    for routes in (write.router, templates.router, creation.router, read.router):
        combined.include_router(routes)
    return combined


def fast_lanes() -> dict[tuple[str, str], Lane]:
    return write.fast_lanes()
