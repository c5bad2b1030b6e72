"""``geogrid users``: accounts, logins and bearer tokens.

``add`` creates an account (optionally with a login: ``--username`` and a password read
from standard input or asked for) and prints its first token once; ``passwd`` sets a
password; ``tokens``, ``issue``, ``revoke`` and ``rotate`` manage tokens; ``unlock`` lifts
a sign-in lock. Passwords are never taken as command-line arguments (they would show in
the process list and the shell history).
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.core.credentials import DEFAULT_TOKEN_DAYS
from geogrid.errors import GeogridError
from geogrid.services import accounts, database
from geogrid.services.accounts import TokenInfo
from geogrid.settings import CityFileError, get_settings

console = Console()
err = Console(stderr=True)

users_app = typer.Typer(help="Accounts, logins and bearer tokens.", no_args_is_help=True)

_DaysOption = Annotated[
    float,
    typer.Option("--days", help="lifetime of the token in days (0: expires at once)"),
]
_PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="read the password from the first line of standard input (else it is asked for)",
    ),
]


def _engine() -> Engine:
    """The engine of the configured database (a bad city file is an error: exit 2)."""
    try:
        return database.get_engine(get_settings().database_url)
    except CityFileError as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2) from None


def _read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or asked twice (hidden)."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    value: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return value


def _show_token(token: str, info: TokenInfo) -> None:
    expires = info.expires_at.isoformat(timespec="minutes") if info.expires_at else "never"
    console.print(f"token {info.id} (expires {expires})", highlight=False)
    console.print(f"token: {token}", highlight=False, soft_wrap=True)
    err.print(
        "[bold yellow]warning:[/] this token is shown only once and is stored only as a "
        "hash; copy it now (send it as 'Authorization: Bearer <token>')."
    )


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="worker, community_admin, street_admin, "
            "district_admin, planner, leader, analyst or admin",
        ),
    ],
    unit: Annotated[
        list[str] | None,
        typer.Option(
            "--unit",
            help="unit code (repeat): grid codes for a worker, the unit of an admin; each "
            "must exist in the published boundary version",
        ),
    ] = None,
    ref: Annotated[str | None, typer.Option(help="external reference, e.g. staff number")] = None,
    username: Annotated[
        str | None, typer.Option("--username", help="a login for the web page")
    ] = None,
    password_stdin: _PasswordStdin = False,
    days: _DaysOption = DEFAULT_TOKEN_DAYS,
) -> None:
    """Create an account and print its first bearer token (shown this once only).

    With --username the account can sign in on the web page; its password is read from
    standard input (--password-stdin) or asked for.
    """
    password = _read_password(password_stdin) if username is not None else None
    try:
        acc, token = accounts.add_user(
            _engine(),
            name,
            role,
            units=unit or [],
            ref=ref,
            username=username,
            password=password,
            token_days=days,
        )
    except GeogridError as exc:
        _fail(exc)
    units = ", ".join(acc.units) or "-"
    login = f"; login {username.strip().lower()}" if username else ""
    console.print(
        f"created account {acc.id}: {acc.name} ({acc.role}; units {units}{login})",
        highlight=False,
    )
    console.print(f"token: {token}", highlight=False, soft_wrap=True)
    err.print(
        "[bold yellow]warning:[/] this token is shown only once and is stored only as a "
        "hash; copy it now (send it as 'Authorization: Bearer <token>')."
    )


@users_app.command("list")
def users_list(fmt: FormatOpt = "table") -> None:
    """List accounts (no tokens, no hashes)."""
    df = accounts.list_users(_engine())
    columns = ["id", "name", "username", "role", "units", "ref", "active"]
    try:
        print_rows(df, fmt, columns=columns, title=f"{len(df)} account(s)", console=console)
    except GeogridError as exc:
        _fail(exc)


@users_app.command("passwd")
def users_passwd(
    account: Annotated[str, typer.Argument(help="the account: username, ref, name or id")],
    username: Annotated[
        str | None,
        typer.Option("--username", help="set (or change) the login name as well"),
    ] = None,
    password_stdin: _PasswordStdin = False,
) -> None:
    """Set an account's password (admin reset): clears its lock and ends its sessions."""
    engine = _engine()
    try:
        acc = accounts.find_account(engine, account)
        password = _read_password(password_stdin)
        acc, login = accounts.set_password(engine, acc.id, password, username=username)
    except GeogridError as exc:
        _fail(exc)
    console.print(f"password set for account {acc.id}: {acc.name} (login {login})")


@users_app.command("unlock")
def users_unlock(
    account: Annotated[str, typer.Argument(help="the account: username, ref, name or id")],
) -> None:
    """Lift the sign-in lock of an account (after repeated wrong passwords)."""
    engine = _engine()
    try:
        acc = accounts.find_account(engine, account)
        accounts.unlock(engine, acc.id)
    except GeogridError as exc:
        _fail(exc)
    console.print(f"sign-in unlocked for account {acc.id}: {acc.name}", highlight=False)


@users_app.command("tokens")
def users_tokens(
    account: Annotated[
        str | None,
        typer.Argument(help="the account: username, ref, name or id (default: everybody)"),
    ] = None,
    fmt: FormatOpt = "table",
) -> None:
    """List token records (never the tokens): state, expiry, last use."""
    engine = _engine()
    try:
        account_id = accounts.find_account(engine, account).id if account else None
        rows = accounts.list_tokens(engine, account_id)
    except GeogridError as exc:
        _fail(exc)
    listing = [
        {
            "id": r.id,
            "account": r.account_id,
            "label": r.label or "",
            "state": r.state,
            "created": r.created_at.isoformat(timespec="minutes"),
            "expires": r.expires_at.isoformat(timespec="minutes") if r.expires_at else "never",
            "last used": r.last_used_at.isoformat(timespec="minutes") if r.last_used_at else "",
        }
        for r in rows
    ]
    try:
        print_rows(listing, fmt, title=f"{len(rows)} token(s)", console=console)
    except GeogridError as exc:
        _fail(exc)


@users_app.command("issue")
def users_issue(
    account: Annotated[str, typer.Argument(help="the account: username, ref, name or id")],
    days: _DaysOption = DEFAULT_TOKEN_DAYS,
    label: Annotated[str | None, typer.Option(help="what the token is for")] = None,
) -> None:
    """Issue another token for an account (e.g. a second device); shown once."""
    engine = _engine()
    try:
        acc = accounts.find_account(engine, account)
        info, token = accounts.issue_token(engine, acc.id, days=days, label=label)
    except GeogridError as exc:
        _fail(exc)
    _show_token(token, info)


@users_app.command("revoke")
def users_revoke(
    token_id: Annotated[
        int | None, typer.Argument(help="the token's id (see 'geogrid users tokens')")
    ] = None,
    all_of: Annotated[
        str | None,
        typer.Option(
            "--all", help="revoke every token of this account (username, ref, name or id)"
        ),
    ] = None,
) -> None:
    """Revoke one token, or every token of an account (--all NAME; its sessions end too)."""
    if (token_id is None) == (all_of is None):
        _fail(ValueError("give either a TOKEN_ID or --all ACCOUNT"))
    engine = _engine()
    try:
        if all_of is not None:
            acc = accounts.find_account(engine, all_of)
            n = accounts.revoke_all_tokens(engine, acc.id)
            console.print(f"revoked {n} token(s) of account {acc.id}: {acc.name}")
            return
        assert token_id is not None
        info = accounts.revoke_token(engine, token_id)
    except GeogridError as exc:
        _fail(exc)
    console.print(f"token {info.id} of account {info.account_id} is {info.state}")


@users_app.command("rotate")
def users_rotate(
    token_id: Annotated[int, typer.Argument(help="the token's id (see 'geogrid users tokens')")],
    days: _DaysOption = DEFAULT_TOKEN_DAYS,
) -> None:
    """Replace a token: print a new one (shown once) and revoke the old one."""
    try:
        info, token = accounts.rotate_token(_engine(), token_id, days=days)
    except GeogridError as exc:
        _fail(exc)
    err.print(f"token {token_id} revoked; its replacement is token {info.id}")
    _show_token(token, info)


def register(app: typer.Typer) -> None:
    """Add the ``users`` group to the ``geogrid`` command."""
    app.add_typer(users_app, name="users")
