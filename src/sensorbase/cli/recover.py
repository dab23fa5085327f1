"""`sensorbase recover-key`: a new server administrator key, minted straight in the store.

For whoever lost the key the first start printed (or every admin key): an offline command that
needs the data directory or the database URL, as `serve` does, and no running server or key. It
is safe while servers run on the same store: the key is written in one transaction, as a server
writes one, and every server finds it on its first use. Whoever can read the store can already
do anything with it; this command gives them nothing more.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from sensorbase.cli.client import CliError, session, stderr
from sensorbase.cli.output import emit_json
from sensorbase.cli.serve import settings_from

commands = typer.Typer()


@commands.command("recover-key", rich_help_panel="Server")
def recover_key(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None,
        help="Directory of the embedded SQLite store.  [default: SENSORBASE_DATA_DIR or ./data]",
        show_default=False,
    ),
    database_url: str | None = typer.Option(
        None,
        help="postgresql://... of a PostgreSQL store.  [default: SENSORBASE_DATABASE_URL]",
        show_default=False,
    ),
    org: str | None = typer.Option(
        None,
        "--org",
        help="The organisation the key administers.  "
        "[default: the first start's, SENSORBASE_BOOTSTRAP_ORG or default]",
        show_default=False,
    ),
    name: str = typer.Option("recovered admin key", help="A name to recognise the key by."),
) -> None:
    """Mint a new server administrator key from the store itself (offline), when the key of
    the first start is lost. Printed once, alone on stdout; store it then."""
    from sensorbase.auth.keys import create_server_admin_key
    from sensorbase.errors import SensorbaseError
    from sensorbase.storage import open_store

    flags = {"data_dir": data_dir, "database_url": database_url}
    settings = settings_from({k: v for k, v in flags.items() if v is not None})
    org_key = org or settings.bootstrap_org
    if not settings.database_url and not (settings.data_dir / "sensorbase.db").exists():
        raise CliError(
            f"no Sensorbase store in {settings.data_dir.resolve()}",
            hint="pass --data-dir (or --database-url) as `sensorbase serve` was given it",
        )
    store = open_store(settings)
    try:
        store.open()
    except SensorbaseError as exc:
        raise CliError(f"cannot open the store: {exc.detail}") from None
    try:
        if store.reader().get_setting("bootstrapped") is None:
            raise CliError("this store was never started: `sensorbase serve` prints the first key")
        found = store.reader().get_org(org_key)
        if found is None:
            known = [o.key for o in store.reader().list_orgs()]
            raise CliError(f"organisation '{org_key}' not found", items=known)
        writer = store.writer()
        tx = writer.begin()
        try:
            key = create_server_admin_key(tx, found.id, name)
        except BaseException:
            writer.rollback()
            raise
        writer.commit()
    finally:
        store.close()
    if session(ctx).as_json:
        emit_json({"key": key.token, "id": key.key_id, "organisation": org_key, "name": name})
        return
    stderr.print(
        f"Created key '{escape(name)}' (id {key.key_id}): admin of organisation "
        f"'{escape(org_key)}' and server administrator. [bold yellow]It is shown once; store "
        "it now:[/]"
    )
    typer.echo(key.token)
