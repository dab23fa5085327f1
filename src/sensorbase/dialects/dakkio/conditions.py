"""dakkio's alert conditions: plain English, parsed into a rule's parts.

    "temperature is greater than 30"              temperature > 30
    "humidity < 20 for 5 minutes"                 held for 5 minutes
    "average temperature over 10 minutes is above 8"   avg over a 10-minute window
    "no data received for 30 minutes"             no data for 30 minutes

Operators: greater than / above / over / more than / >, at least / greater than or equal to /
>=, less than / below / under / <, at most / less than or equal to / <=, equals / is equal to
/ is / == / =, is not / does not equal / is not equal to / !=. Durations: seconds, minutes,
hours, days (s, sec, min, m, h, hr, d). The reply's `parsedCondition` names the operator as
`{field, operator, value}` with operator one of OPERATOR_NAMES' values."""

from __future__ import annotations

import re
from dataclasses import dataclass

OPERATORS = (  # longest first: "greater than or equal to" before "greater than"
    (r"is greater than or equal to|greater than or equal to|is at least|at least|>=", ">="),
    (r"is less than or equal to|less than or equal to|is at most|at most|<=", "<="),
    (r"is not equal to|not equal to|does not equal|is not|!=|<>", "!="),
    (r"is greater than|greater than|is above|above|is over|exceeds|is more than|more than|>", ">"),
    (r"is less than|less than|is below|below|is under|under|<", "<"),
    (r"is equal to|equal to|equals|==|=|is", "=="),
)
OPERATOR_NAMES = {
    ">": "greater_than",
    ">=": "greater_than_or_equal",
    "<": "less_than",
    "<=": "less_than_or_equal",
    "==": "equals",
    "!=": "not_equals",
}
AGGREGATE_WORDS = {
    "average": "avg", "avg": "avg", "mean": "avg",
    "minimum": "min", "min": "min", "maximum": "max", "max": "max",
}  # fmt: skip
UNIT_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hr": 3600, "hour": 3600, "d": 86_400, "day": 86_400}  # fmt: skip
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_DURATION = r"(\d+(?:\.\d+)?)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)"
_FOR = re.compile(rf"\s+for\s+(?:at\s+least\s+)?{_DURATION}\s*$", re.IGNORECASE)
_NO_DATA = re.compile(
    rf"^\s*no\s+data\s+(?:received\s+)?(?:for|in)\s+(?:the\s+last\s+)?{_DURATION}\s*$",
    re.IGNORECASE,
)
_OVER = re.compile(
    rf"^(\w+)\s+(?:of\s+)?(.+?)\s+(?:over|in|during)\s+(?:the\s+last\s+)?{_DURATION}$", re.I
)
_COMPARE = re.compile(
    r"^(.+?)\s*(" + "|".join(p for p, _ in OPERATORS) + rf")\s*({_NUMBER})\s*$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Condition:
    field: str | None
    op: str = ">"
    value: float = 0.0
    aggregate: str | None = None
    window_s: int = 0
    for_s: int = 0
    no_data_s: int | None = None

    def parsed(self) -> dict[str, object]:
        """dakkio's `parsedCondition`."""
        if self.no_data_s is not None:
            return {"field": self.field, "operator": "no_data", "value": None,
                    "durationMinutes": self.no_data_s / 60}  # fmt: skip
        out: dict[str, object] = {
            "field": self.field,
            "operator": OPERATOR_NAMES[self.op],
            "value": self.value,
        }
        if self.aggregate:
            out["aggregation"] = self.aggregate
            out["windowMinutes"] = self.window_s / 60
        if self.for_s:
            out["durationMinutes"] = self.for_s / 60
        return out


def _seconds(amount: str, unit: str) -> int:
    unit = unit.lower()
    for name, seconds in UNIT_S.items():
        if unit == name or unit.rstrip("s") == name or unit == name + "s":
            return round(float(amount) * seconds)
    raise ValueError(unit)


def parse(text: str) -> Condition:
    """The condition, or ValueError saying what could not be understood."""
    quiet = _NO_DATA.match(text)
    if quiet:
        return Condition(None, no_data_s=max(1, _seconds(*quiet.groups())))
    for_s = 0
    held = _FOR.search(text)
    if held:
        for_s = _seconds(*held.groups())
        text = text[: held.start()]
    compare = _COMPARE.match(text.strip())
    if not compare:
        raise ValueError(
            "expected '<field> <comparison> <number>' (e.g. 'temperature is greater than 30'), "
            "optionally 'for <n> minutes', or 'no data received for <n> minutes'"
        )
    subject, words, number = compare.groups()
    op = next(o for pattern, o in OPERATORS if re.fullmatch(pattern, words, re.IGNORECASE))
    aggregate, window_s = None, 0
    over = _OVER.match(subject.strip())
    if over and over.group(1).lower() in AGGREGATE_WORDS:
        aggregate = AGGREGATE_WORDS[over.group(1).lower()]
        subject = over.group(2)
        window_s = _seconds(over.group(3), over.group(4))
    field = subject.strip()
    if field.lower().startswith("the "):
        field = field[4:].strip()
    if not field or " " in field or field.lower() in ("is", "was", "are"):
        raise ValueError(f"expected one field name before the comparison, got '{subject.strip()}'")
    return Condition(field, op, float(number), aggregate, window_s, for_s)
