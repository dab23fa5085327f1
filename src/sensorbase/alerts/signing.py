"""How a delivery is signed, and how a receiver checks it (docs/alerts.md shows the same in a
few lines a receiver can copy):

    X-Sensorbase-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>
    X-Sensorbase-Timestamp: <Unix seconds of this attempt>

The timestamp is signed with the body, so a receiver that refuses timestamps older than a few
minutes cannot be replayed an old delivery; the delivery id (X-Sensorbase-Delivery, and "id" in
the body) stays the same across attempts, for receivers to drop duplicates."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Sensorbase-Signature"
TIMESTAMP_HEADER = "X-Sensorbase-Timestamp"
DELIVERY_HEADER = "X-Sensorbase-Delivery"
EVENT_HEADER = "X-Sensorbase-Event"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signed: str) -> bool:
    """What a receiver does (also the tests' receiver)."""
    return hmac.compare_digest(signature(secret, int(timestamp), body), signed)
