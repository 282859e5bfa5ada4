"""`consentry admin add|remove|client`: the privacy center's administrators and API clients."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import ConsentryError, InputError
from ..timeutil import iso
from ._common import LedgerOpt, friendly, open_ledger, out, show

app = typer.Typer(help="Privacy center administrators and API clients.", no_args_is_help=True)


@app.command("add")
@friendly
def admin_add(
    username: str,
    role: Annotated[str, typer.Option(help="reviewer (may reject with grounds) or viewer")] = "reviewer",
    ledger: LedgerOpt = None,
) -> None:
    """Add or update an administrator; the password is asked for, never taken as an argument."""
    from ..access import ROLES, Admins

    if role not in ROLES:  # before the password is asked for, twice
        raise InputError(f"unknown role '{role}'", fix=f"use one of {', '.join(ROLES)} for --role")
    with open_ledger(ledger, create=True) as led:
        admins = Admins(led.engine)
        existed = admins.get(username) is not None
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        a = admins.add(username, password, role)
    if existed:
        out.print(f"administrator {a.username} ({a.role}) updated: new password; every session of theirs has ended",
                  highlight=False)
    else:
        out.print(f"administrator {a.username} ({a.role}) added", highlight=False)


@app.command("remove")
@friendly
def admin_remove(username: str, ledger: LedgerOpt = None) -> None:
    """Remove an administrator; their sessions end at once."""
    from ..access import Admins

    with open_ledger(ledger) as led:
        if not Admins(led.engine).remove(username):
            raise ConsentryError(f"there is no administrator '{username}'")
    out.print(f"administrator {username} removed; their sessions have ended", highlight=False)


@app.command("client")
@friendly
def admin_client(
    name: Annotated[str, typer.Argument(help="A name for a new client, or 'list', or 'revoke' followed by a client id.")],
    client_id: Annotated[Optional[str], typer.Argument(help="With 'revoke': the client id (cl_...).")] = None,
    scope: Annotated[
        Optional[list[str]], typer.Option("--scope", help="read (GET) and/or write (POST); repeatable. Default: both.")
    ] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Create, list or revoke the API clients of platforms.

    A new client's key is printed once; `client list` never shows a key;
    `client revoke ID` revokes one."""
    from ..access import ApiClients
    from ..timeutil import from_micros

    if name in ("list", "revoke"):
        if scope:
            raise ConsentryError(f"--scope is for creating a client, not for '{name}'")
        if (name == "revoke") != (client_id is not None):
            raise ConsentryError("usage: consentry admin client revoke CLIENT_ID" if name == "revoke"
                                 else "usage: consentry admin client list")
    elif client_id is not None:
        raise ConsentryError(f"unexpected extra argument '{client_id}'; quote a client name with spaces")
    with open_ledger(ledger, create=name not in ("list", "revoke")) as led:
        clients = ApiClients(led.engine)
        if name == "list":
            table = Table("client", "name", "scopes", "created", "revoked", title="API clients")
            for r in clients.list():
                table.add_row(r["client_id"], r["name"], r["scopes"], iso(from_micros(r["created_us"])),
                              iso(from_micros(r["revoked_us"])) if r["revoked_us"] else "")
            show(table, empty='no API clients yet; create one with `consentry admin client "NAME"`')
            return
        if name == "revoke":
            assert client_id is not None
            if not clients.revoke(client_id):
                raise ConsentryError(f"no active client '{client_id}' (see `consentry admin client list`)")
            out.print(f"client {client_id} revoked; its key is refused from now on", highlight=False)
            return
        client_id, key = clients.create(name, tuple(scope or ("read", "write")))
    out.print(f"client {client_id} ({name}, {', '.join(scope or ('read', 'write'))}); key (shown once, store it safely):",
              highlight=False)
    sys.stdout.write(key + "\n")
