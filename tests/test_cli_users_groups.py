"""`sensorbase users`, `sensorbase groups` and Datacooee-style `sources create`, against the
real server of tests/test_cli.py: a created user signs in through `POST /restapi/login`, a
group's members are what the server lists, a generated input is served by the Datacooee API."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests import test_cli
from tests.test_cli import Cli

# The fixtures of tests/test_cli.py: a live server in a subprocess and the CLI pointed at it.
server = test_cli.server
cli = test_cli.cli


def login(cli: Cli, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{cli.url}/restapi/login", json={"email": email, "password": password})


def token_of(cli: Cli, email: str, password: str) -> str:
    reply = login(cli, email, password)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


def emails(cli: Cli, key: str | None = None) -> list[str]:
    return [u["email"] for u in cli.json("users", "list", key=key)["users"]]


# --- users ---------------------------------------------------------------------------------


def test_users_create_with_a_prompted_password_and_sign_in(cli: Cli) -> None:
    # Asked twice without echo; a mismatch asks again, and the second pair is the password.
    result = cli("users", "create", "ada@example.com", "--role", "writer",
                 input="first-try-1\nfirst-try-2\nsecret-pass\nsecret-pass\n")  # fmt: skip
    assert "do not match" in result.stderr and "Password" in result.stderr
    assert "secret-pass" not in result.stdout and "first-try" not in result.stdout
    assert "ada@example.com" in result.stdout and "writer" in result.stdout
    assert "Password" not in result.stdout  # prompts go to stderr; stdout is the result
    prompted = cli.json("users", "create", "ann@example.com", "-r", "reader",
                        input="ann-password\nann-password\n")  # fmt: skip
    assert prompted["email"] == "ann@example.com"
    token_of(cli, "ann@example.com", "ann-password")

    assert login(cli, "ada@example.com", "first-try-1").status_code == 401
    token = token_of(cli, "ada@example.com", "secret-pass")
    who = cli.json("whoami", key=token)
    assert who["organisation"] == "default"
    assert sorted(who["scopes"]) == ["data:read", "data:write"]

    listed = cli.json("users", "list")["users"]
    [ada] = [u for u in listed if u["email"] == "ada@example.com"]
    assert ada["role"] == "writer" and isinstance(ada["id"], int)
    assert "ada@example.com" in cli("users", "list").stdout
    # A writer is not an admin: the server refuses, the CLI says so.
    assert "Error 403" in cli.fails("users", "list", key=token)


def test_users_password_stdin_roles_and_refusals(cli: Cli) -> None:
    created = cli.json("users", "create", "bob@example.com", "-r", "READER", "--password-stdin",
                       input="pass from stdin\n")  # fmt: skip
    assert created["email"] == "bob@example.com" and created["role"] == "reader"
    assert "password" not in created
    token = token_of(cli, "bob@example.com", "pass from stdin")  # only the line break is cut
    assert cli.json("whoami", key=token)["scopes"] == ["data:read"]

    stderr = cli.fails("users", "create", "bob@example.com", "--role", "reader",
                       "--password-stdin", input="another-pass\n")  # fmt: skip
    assert "Error 409" in stderr and "bob@example.com" in stderr
    stderr = cli.fails("users", "create", "carl@example.com", "--role", "reader",
                       "--password-stdin", input="short\n")  # fmt: skip
    assert "Error 400" in stderr and "password" in stderr
    assert "carl@example.com" not in emails(cli)

    bad_role = cli("users", "create", "dan@example.com", "--role", "owner",
                   "--password-stdin", input="long-enough\n", ok=False)  # fmt: skip
    assert bad_role.exit_code == 2 and "owner" in bad_role.stderr
    no_role = cli("users", "create", "dan@example.com", "--password-stdin",
                  input="long-enough\n", ok=False)  # fmt: skip
    assert no_role.exit_code == 2 and "--role" in no_role.stderr
    empty = cli("users", "create", "dan@example.com", "-r", "admin", "--password-stdin",
                input="\n", ok=False)  # fmt: skip
    assert empty.exit_code == 2 and "no password" in empty.stderr
    assert "dan@example.com" not in emails(cli)


def test_users_delete_asks_then_ends_sign_in(cli: Cli) -> None:
    first = cli.json("users", "create", "eve@example.com", "-r", "reader", "--password-stdin",
                     input="eve-password\n")  # fmt: skip
    cli.json("users", "create", "fay@example.com", "-r", "admin", "--password-stdin",
             input="fay-password\n")  # fmt: skip
    token = token_of(cli, "eve@example.com", "eve-password")

    declined = cli("users", "delete", "eve@example.com", input="n\n", ok=False)
    assert declined.exit_code == 1
    assert "eve@example.com" in emails(cli)

    cli("users", "delete", "eve@example.com", input="y\n")
    assert "eve@example.com" not in emails(cli)
    assert login(cli, "eve@example.com", "eve-password").status_code == 401
    assert "401" in cli.fails("whoami", key=token)  # their tokens end with them
    assert "Error 404" in cli.fails("users", "delete", str(first["id"]), "--yes")

    fay = [u for u in cli.json("users", "list")["users"] if u["email"] == "fay@example.com"]
    gone = cli.json("users", "delete", str(fay[0]["id"]), "--yes")  # by id
    assert gone == {"deleted": "user", "user": str(fay[0]["id"])}
    assert "fay@example.com" not in emails(cli)


def test_users_create_in_another_org_needs_a_server_admin(cli: Cli) -> None:
    cli("orgs", "create", "umbrella")
    org_admin = cli("orgs", "key", "umbrella").stdout.strip()
    created = cli.json("users", "create", "gil@umbrella.test", "-r", "admin", "--org", "umbrella",
                       "--password-stdin", input="gil-password\n")  # fmt: skip
    assert created["email"] == "gil@umbrella.test"
    token = token_of(cli, "gil@umbrella.test", "gil-password")
    assert cli.json("whoami", key=token)["organisation"] == "umbrella"
    # Listed in umbrella (by its admin key and by the user, an admin), not in default.
    assert emails(cli, key=org_admin) == ["gil@umbrella.test"]
    assert emails(cli, key=token) == ["gil@umbrella.test"]
    assert "gil@umbrella.test" not in emails(cli)

    # An organisation's admin is not a server admin; an unknown organisation is named.
    stderr = cli.fails("users", "create", "hal@umbrella.test", "-r", "reader", "--org", "default",
                       "--password-stdin", input="hal-password\n", key=org_admin)  # fmt: skip
    assert "Error 403" in stderr
    stderr = cli.fails("users", "create", "hal@umbrella.test", "-r", "reader", "--org", "nowhere",
                       "--password-stdin", input="hal-password\n")  # fmt: skip
    assert "Error 404" in stderr and "nowhere" in stderr
    # Without --org, an org admin key creates in its own organisation.
    cli("users", "create", "hal@umbrella.test", "-r", "reader", "--password-stdin",
        input="hal-password\n", key=org_admin)  # fmt: skip
    assert emails(cli, key=org_admin) == ["gil@umbrella.test", "hal@umbrella.test"]


# --- sources as Datacooee inputs, groups as assets -----------------------------------------


def datacooee_inputs(cli: Cli, *ids: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{cli.url}/api/external/v1/get_inputdata_by_inputs/",
        params={"inputs_ids": ",".join(ids), "timeperiod_last": "5_days"},
        headers={"ORGANIZATION-ID": "default", "ORGANIZATION-API-KEY": cli.admin},
    )
    assert reply.status_code == 200, reply.text
    return [item["input"] for item in reply.json()]


def test_sources_create_makes_a_datacooee_input_with_a_generated_key(cli: Cli) -> None:
    cli("buckets", "create", "boilers")
    created = cli.json("sources", "create", "-b", "boilers", "--name", "Boiler pressure",
                       "--schema", "value:number:bar")  # fmt: skip
    assert re.fullmatch(r"sen[0-9a-f]{10}", created["key"]), created
    assert created["schema"]["value"]["unit"] == "bar"
    table = cli("sources", "create", "-b", "boilers", "--schema", "value:number:°C").stdout
    [generated] = set(re.findall(r"sen[0-9a-f]{10}", table))  # its key, and its name
    assert generated != created["key"]
    named = cli.json("sources", "create", "senboiler001", "-b", "boilers", "--name", "Boiler temp",
                     "--schema", "value:number:°C")  # fmt: skip
    assert named["key"] == "senboiler001"

    inputs = datacooee_inputs(cli, created["key"], "senboiler001", generated)
    assert inputs == [
        {"id": created["key"], "name": "Boiler pressure", "measure_unit": "bar"},
        {"id": "senboiler001", "name": "Boiler temp", "measure_unit": "°C"},
        {"id": generated, "name": generated, "measure_unit": "°C"},
    ]


def test_groups_create_list_show_set_sources_delete(cli: Cli) -> None:
    cli("buckets", "create", "hall")
    cli("buckets", "create", "yard")
    for bucket, key in (
        ("hall", "senhall00001"),
        ("hall", "senhall00002"),
        ("yard", "senyard0001"),
    ):
        cli("sources", "create", key, "-b", bucket, "--schema", "value:number:°C")

    created = cli.json("groups", "create", "--name", "Boiler room", "--source", "senhall00001",
                       "-s", "yard/senyard0001", "--meta", '{"floor": 1}')  # fmt: skip
    group_id = created["id"]
    assert isinstance(group_id, int) and created["name"] == "Boiler room"
    assert created["meta"] == {"floor": 1}
    assert created["sources"] == [
        {"bucket": "hall", "source": "senhall00001"},
        {"bucket": "yard", "source": "senyard0001"},
    ]
    assert cli.json("groups", "show", str(group_id)) == created
    listed = cli.json("groups", "list")["groups"]
    assert created in listed
    table = cli("groups", "list").stdout
    assert "Boiler room" in table and "hall/senhall00001, yard/senyard0001" in table
    shown = cli("groups", "show", str(group_id)).stdout
    assert "senyard0001" in shown and "Boiler room" in shown

    # The Datacooee API serves the group as an asset with these inputs.
    reply = httpx.get(
        f"{cli.url}/api/external/v1/get_inputdata_by_asset/",
        params={"asset_id": str(group_id), "timeperiod_last": "5_days"},
        headers={"ORGANIZATION-ID": "default", "ORGANIZATION-API-KEY": cli.admin},
    )
    assert reply.status_code == 200, reply.text
    asset = reply.json()
    assert asset["id"] == group_id and asset["name"] == "Boiler room"
    assert [item["input"]["id"] for item in asset["inputs"]] == ["senhall00001", "senyard0001"]

    updated = cli.json("groups", "set-sources", str(group_id), "-s", "senhall00002",
                       "-s", "hall/senhall00001")  # fmt: skip
    members = [{"bucket": "hall", "source": "senhall00002"},
               {"bucket": "hall", "source": "senhall00001"}]  # fmt: skip
    assert sorted(updated["sources"], key=str) == sorted(members, key=str)
    assert cli.json("groups", "show", str(group_id))["sources"] == updated["sources"]

    # Unknown members are all named, and nothing changes.
    stderr = cli.fails("groups", "set-sources", str(group_id), "-s", "nosuch", "-s", "yard/nope")
    assert "Error 400" in stderr and "'nosuch'" in stderr and "'nope' in bucket 'yard'" in stderr
    assert cli.json("groups", "show", str(group_id))["sources"] == updated["sources"]
    assert "nosuch" in cli.fails("groups", "create", "--name", "Bad", "-s", "nosuch")
    assert "Bad" not in [g["name"] for g in cli.json("groups", "list")["groups"]]

    neither = cli("groups", "set-sources", str(group_id), ok=False)
    assert neither.exit_code == 2 and "--clear" in neither.stderr
    bad_member = cli("groups", "create", "--name", "X", "-s", "yard/", ok=False)
    assert bad_member.exit_code == 2 and "BUCKET/KEY" in bad_member.stderr
    assert cli.json("groups", "set-sources", str(group_id), "--clear")["sources"] == []

    declined = cli("groups", "delete", str(group_id), input="n\n", ok=False)
    assert declined.exit_code == 1
    assert cli.json("groups", "delete", str(group_id), "--yes") == {
        "deleted": "group",
        "id": group_id,
    }
    assert "Error 404" in cli.fails("groups", "show", str(group_id))
    # Its sources stay.
    assert len(cli.json("sources", "list", "-b", "hall")["sources"]) == 2


def test_groups_span_buckets_so_a_bucket_key_is_refused(cli: Cli) -> None:
    cli("buckets", "create", "annex")
    limited = cli("keys", "create", "--name", "annex", "-s", "data:write", "-s", "data:read",
                  "--bucket", "annex").stdout.strip()  # fmt: skip
    assert "Error 403" in cli.fails("groups", "list", key=limited)
