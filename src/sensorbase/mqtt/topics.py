"""The topic scheme: `<prefix>/<org>/<bucket>/<source>[/<field> | /~<dialect>]`.

    sensorbase/acme/farm/ESP32-001                  native JSON (points name their fields)
    sensorbase/acme/farm/ESP32-001/temperature      native JSON or a bare number, this field
    sensorbase/acme/farm/ESP32-001/~dakkio          a vendor dialect's JSON body

Refusals go out on `<prefix>/<org>/$errors` (three levels: the consumer's filters, which take
four or five, never read them back)."""

from __future__ import annotations

from dataclasses import dataclass

ERRORS_LEVEL = "$errors"


@dataclass(frozen=True, slots=True)
class Topic:
    org: str
    bucket: str
    source: str
    field: str | None = None
    dialect: str | None = None


class TopicError(ValueError):
    """A topic outside the scheme (its reason is the refusal's)."""


def filters(prefix: str, share_group: str) -> list[str]:
    """What the consumer subscribes to: the scheme's four- and five-level topics."""
    share = f"$share/{share_group}/" if share_group else ""
    return [f"{share}{prefix}/+/+/+", f"{share}{prefix}/+/+/+/+"]


def errors_topic(prefix: str, org: str) -> str:
    return f"{prefix}/{org}/{ERRORS_LEVEL}"


def parse(prefix: str, topic: str) -> Topic:
    levels = topic.split("/")
    if levels[0] != prefix or len(levels) not in (4, 5):
        raise TopicError(f"'{topic}' is not {prefix}/<org>/<bucket>/<source>[/<field>|/~<dialect>]")
    org, bucket, source = levels[1:4]
    if not (org and bucket and source):
        raise TopicError(f"'{topic}' has an empty organisation, bucket or source level")
    last = levels[4] if len(levels) == 5 else None
    if not last:
        if last == "":
            raise TopicError(f"'{topic}' ends with an empty field level")
        return Topic(org, bucket, source)
    if last.startswith("~"):
        return Topic(org, bucket, source, dialect=last[1:])
    return Topic(org, bucket, source, field=last)
