"""`sensorbase users`: people who sign in with an email and a password (`/v1/users`).

An organisation admin's key manages the users of its organisation (create, update: role or
password, delete); a server administrator's key creates a user in any organisation with
`--org`. A signed-in user (their token as the key) changes their own password with `users
password`. A password is asked without echo (a new one twice), or read from stdin with
`--password-stdin` (for scripts); it is never printed.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import quote

import typer
from rich.markup import escape

from sensorbase.cli.client import api, session, stderr
from sensorbase.cli.options import YesOption
from sensorbase.cli.output import done, show, table

commands = typer.Typer(
    name="users",
    help="Users (email and password sign-in): list, create, update, delete, change a password.",
    rich_help_panel="Administration",
    no_args_is_help=True,
)

COLUMNS = ["id", "email", "role", "created"]


class Role(StrEnum):
    """A user's role; they act with its scopes."""

    admin = "admin"  # everything in the organisation
    writer = "writer"  # data:write and data:read
    reader = "reader"  # data:read


def read_password(from_stdin: bool) -> str:
    """The new user's password: stdin's text without its final line break, or asked twice
    without echo (a mismatch asks again)."""
    if not from_stdin:
        # On stderr, so that stdout holds only the result (`--json` stays parseable).
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))
    text = typer.get_text_stream("stdin").read()
    password = text[:-1] if text.endswith("\n") else text
    password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise typer.BadParameter("stdin held no password", param_hint="--password-stdin")
    return password


def stdin_lines(count: int, option: str = "--password-stdin") -> list[str]:
    """The first `count` lines of stdin, without their line breaks, none of them empty."""
    lines = typer.get_text_stream("stdin").read().splitlines()[:count]
    if len(lines) < count or not all(lines):
        raise typer.BadParameter(
            f"stdin held fewer than {count} non-empty lines", param_hint=option
        )
    return lines


@commands.command("list")
def list_users(ctx: typer.Context) -> None:
    """List the users of the organisation (an admin key)."""
    reply = api(ctx).get("/v1/users")
    show(ctx, reply, table(reply["users"], COLUMNS))


@commands.command("create")
def create_user(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The email they sign in with (unique on the server)."),
    role: Role = typer.Option(
        ...,
        "--role",
        "-r",
        case_sensitive=False,
        help="admin (everything in the organisation), writer (write and read data) "
        "or reader (read data).",
    ),
    org: str | None = typer.Option(
        None,
        "--org",
        help="Create the user in this organisation (a server administrator's key); "
        "default: the key's own organisation.",
        show_default=False,
    ),
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read the password from stdin instead of asking for it (at least 8 characters).",
    ),
) -> None:
    """Create a user; asks for their password twice (hidden)."""
    body = {"email": email, "password": read_password(password_stdin), "role": role.value}
    if org is None:
        reply = api(ctx).post("/v1/users", body)
        title = "Created user"
    else:
        reply = api(ctx).post(f"/v1/orgs/{quote(org, safe='')}/users", body)
        title = f"Created user in organisation '{org}'"
    show(ctx, reply, table([reply], COLUMNS, title))


@commands.command("update")
def update_user(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="The user's email or id (see users list)."),
    role: Role | None = typer.Option(
        None, "--role", "-r", case_sensitive=False, help="Their new role.", show_default=False
    ),
    password: bool = typer.Option(
        False, "--password", help="Give them a new password (asked twice, hidden)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Give them a new password, read from stdin."
    ),
) -> None:
    """Change a user's role or password (an admin key); their tokens stop working."""
    body: dict[str, str] = {}
    if role is not None:
        body["role"] = role.value
    if password or password_stdin:
        body["password"] = read_password(password_stdin)
    if not body:
        raise typer.BadParameter("give --role, --password or --password-stdin")
    reply = api(ctx).patch(f"/v1/users/{quote(user, safe='')}", body)
    show(ctx, reply, table([reply], COLUMNS, "Changed user (their tokens stopped working)"))


@commands.command("password")
def change_own_password(
    ctx: typer.Context,
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read the current password, then the new one, a line each from stdin.",
    ),
) -> None:
    """Change your own password: the key is your user token (from signing in). Asks for the
    current password, then the new one twice. Prints a new token; the old ones stop working."""
    if password_stdin:
        current, new = stdin_lines(2)
    else:
        current = str(typer.prompt("Current password", hide_input=True, err=True))
        new = str(typer.prompt("New password", hide_input=True, confirmation_prompt=True, err=True))
    reply = api(ctx).post(
        "/v1/users/me/password", {"current_password": current, "new_password": new}
    )
    if session(ctx).as_json:
        show(ctx, reply)
        return
    stderr.print(
        f"Changed the password of {escape(str(reply['email']))}; every token from before has "
        "stopped working. Your new token:"
    )
    typer.echo(reply["token"])


@commands.command("delete")
def delete_user(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="The user's email or id (see users list)."),
    yes: YesOption = False,
) -> None:
    """Delete a user; their access tokens stop working."""
    if not yes:
        typer.confirm(f"Delete user '{user}'?", abort=True)
    api(ctx).delete(f"/v1/users/{quote(user, safe='')}")
    done(ctx, {"deleted": "user", "user": user}, f"Deleted user '{user}'.")
