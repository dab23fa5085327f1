"""`sensorbase alerts` and `sensorbase webhooks` against a real `sensorbase serve`: a webhook and
a rule made from the command line fire on a write, and the history and delivery log read back."""

from __future__ import annotations

import json
import time

from tests.alerts.receiver import receiver
from tests.test_cli import Cli, cli, server  # noqa: F401 (the fixtures)


def test_alerts_from_the_command_line(cli: Cli) -> None:  # noqa: F811
    cli("buckets", "create", "cold")
    with receiver() as got:
        made = cli.json("webhooks", "create", got.url, "-e", "alert.triggered",
                        "--secret", "cli-secret-1")  # fmt: skip
        assert made["secret"] == "cli-secret-1"
        rule = cli.json("alerts", "create", "-b", "cold", "--name", "Freezer warm",
                        "--source", "freezer-*", "--field", "t", "--threshold", "-15")  # fmt: skip
        assert rule["condition"] == "t > -15"
        points = [{"source": "freezer-2", "field": "t", "value": -3.0}]
        cli("write", "-", "-b", "cold", input=json.dumps(points))
        [fired] = got.wait(1)
        assert fired.signed_by("cli-secret-1")
        listed = cli.json("alerts", "list")["alerts"]
        assert [(a["key"], a["states"][0]["state"]) for a in listed] == [(rule["key"], "firing")]
        history = cli.json("alerts", "history", rule["key"])["events"]
        assert [(e["from"], e["to"]) for e in history] == [("ok", "firing")]
        deadline = time.monotonic() + 10
        while True:  # the outcome is recorded just after the receiver answers
            log = cli.json("webhooks", "deliveries", made["key"])["deliveries"]
            if (log and log[0]["status"] == "delivered") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [(d["event"], d["status"]) for d in log] == [("alert.triggered", "delivered")]
        assert "Freezer warm" in cli("alerts", "show", rule["key"]).stdout
        # A new condition puts the state back to ok (-3 breaks "t > -15", not "t > 0").
        changed = cli.json("alerts", "update", rule["key"], "--threshold", "0",
                           "--cooldown-s", "0")  # fmt: skip
        assert (changed["condition"], changed["states"][0]["state"]) == ("t > 0", "ok")
        history = cli.json("alerts", "history", rule["key"])["events"]
        assert [(e["from"], e["to"]) for e in history] == [("firing", "ok"), ("ok", "firing")]
        hook = cli.json("webhooks", "update", made["key"], "--secret", "cli-secret-2")
        assert hook["events"] == ["alert.triggered"]
        cli("write", "-", "-b", "cold", input=json.dumps([{**points[0], "value": 5.0}]))
        second = got.wait(2)[1]
        assert second.signed_by("cli-secret-2") and second.json["value"] == 5.0
        cli("alerts", "delete", rule["key"], "--yes")
        cli("webhooks", "delete", made["key"], "--yes")
        assert cli.json("alerts", "list") == {"alerts": []}
