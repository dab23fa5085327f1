"""dakkio's `retentionDays` of a bucket (1 to 3650, VENDOR-NOTES.md): Sensorbase's retention
of the bucket in whole days (docs/lifecycle.md)."""

from __future__ import annotations

from typing import Any

from sensorbase.dialects.dakkio.errors import Details, expected

RETENTION_DAYS = {
    "type": ["integer", "null"],
    "minimum": 1,
    "maximum": 3650,
    "description": "Days points are kept (Sensorbase: the bucket's retention); null: forever",
}
DAY_US = 86_400_000_000


def retention_days(body: dict[str, Any], details: Details) -> int | None:
    """The body's `retentionDays` (None: absent or null, which the caller tells apart), each
    problem added to `details`."""
    value = body.get("retentionDays")
    if value is None:
        return None
    if isinstance(value, float):
        if not value.is_integer():
            details.add(["body", "retentionDays"], "Expected integer, received float")
            return None
        value = int(value)  # (217.0 is JSON's integer 217)
    if not isinstance(value, int) or isinstance(value, bool):
        details.add(["body", "retentionDays"], expected("number", value))
        return None
    if not 1 <= value <= 3650:
        details.add(["body", "retentionDays"], "Number must be between 1 and 3650")
        return None
    return value
