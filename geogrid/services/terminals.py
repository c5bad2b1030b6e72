"""Terminals: enrol a worker's phone with a one-time code, list devices, revoke one.

- :func:`enrol` — an admin (or an admin of the worker's units) issues a one-time code
  (10 characters, shown as ``XXXXX-XXXXX``, with a QR code of it) that expires;
- :func:`redeem` — the phone redeems the code (anonymous: the code is the credential) and
  receives its own bearer token, an ``account_token`` row linked from ``terminal``;
- :func:`list_terminals`, :func:`revoke` — revoking a device revokes its token alone:
  the worker's other devices keep working, and the revoked one's next request is refused
  with ``terminal_revoked`` (:class:`geogrid.core.terminals.TerminalRevoked`, raised by
  :func:`geogrid.services.accounts.authenticate` through :func:`on_authenticated` /
  :func:`revoked_terminal`).

Last-seen time and app version are written by :func:`on_authenticated` at most once a
minute per device (or when the version changes). Codes and tokens are returned once and
stored as digests only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from geogrid.core.accounts import UNIT_ROLES, Account, hash_token, new_token
from geogrid.core.credentials import token_expiry
from geogrid.core.scope import Scope
from geogrid.core.terminals import (
    DEFAULT_TTL_MINUTES,
    DEVICE_TOKEN_DAYS,
    TOUCH_EVERY,
    TerminalRevoked,
    check_app_version,
    check_label,
    check_ttl,
    enrol_uri,
    format_code,
    hash_code,
    new_code,
    normalize_code,
    qr_svg,
    terminal_state,
)
from geogrid.errors import Forbidden, InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.store import accounts as store_accounts
from geogrid.store import terminals as store
from geogrid.store.engine import transaction

__all__ = [
    "enrol",
    "redeem",
    "list_terminals",
    "get_terminal",
    "revoke",
    "on_authenticated",
    "revoked_terminal",
]

log = logging.getLogger("geogrid.terminals")

Bind = Engine | Connection

#: roles that manage the devices of the workers in their units
_UNIT_ADMINS = frozenset(r for r in UNIT_ROLES if r != "worker")


def _now() -> datetime:
    return datetime.now(UTC)


def _unit_covered(scope: Scope, code: str) -> bool:
    return any(code.startswith(u) for u in scope.units)


def _may_manage(actor: Account | None, account_id: int, units: tuple[str, ...]) -> bool:
    """May ``actor`` (None: the command line) manage the devices of this account?"""
    if actor is None or actor.role == "admin":
        return True
    if actor.role in _UNIT_ADMINS:
        scope = Scope.of(actor)
        return any(_unit_covered(scope, u) for u in units)
    return actor.role == "worker" and actor.id == account_id


def _terminal(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in store.TERMINAL_COLUMNS if k not in {"token_id", "units"}}
    out["units"] = list(row.get("units") or [])
    out["state"] = terminal_state(row["revoked_at"], row["token_revoked_at"])
    return out


# --------------------------------------------------------------------------- enrol
def enrol(
    bind: Bind,
    account_id: int,
    *,
    ttl_minutes: int = DEFAULT_TTL_MINUTES,
    actor: Account | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Issue a one-time enrolment code for an account's new device.

    Parameters
    ----------
    account_id : the worker (any active account for an admin or the command line)
    ttl_minutes : the code's lifetime (1 minute to a week; default a day)
    actor : who issues it (None: the command line). An admin issues codes for anyone;
        a community/street/district admin for the workers of grids in their units.
    base_url : the service's address, put in the QR code (``<base>/m/#enrol=<code>``)

    Returns
    -------
    ``code`` (``XXXXX-XXXXX``, shown this once), ``expires_at``, ``uri`` (what the QR code
    holds), ``qr_svg`` (an SVG document), ``account`` {id, name, role, units},
    ``enrolment_id``.

    Raises
    ------
    InvalidInput : a bad ``ttl_minutes``; NotFound : no such account (or, for a unit
    admin, one outside their units); Forbidden : the actor may not enrol devices, or the
    account is inactive.
    """
    ttl = check_ttl(ttl_minutes)
    if actor is not None and actor.role != "admin" and actor.role not in _UNIT_ADMINS:
        raise Forbidden(
            f"role {actor.role!r} may not enrol terminals: an admin or an admin of the "
            "worker's units issues enrolment codes"
        )
    code = new_code()
    expires = _now() + timedelta(minutes=ttl)
    with transaction(bind) as c:
        row = store_accounts.account_row(c, int(account_id))
        units = store_accounts.account_units(c, int(account_id)) if row else ()
        if row is None or not _may_manage(actor, int(account_id), units):
            raise NotFound(f"account {account_id} does not exist (or is outside your units)")
        if actor is not None and actor.role in _UNIT_ADMINS and row["role"] != "worker":
            raise Forbidden(
                f"{actor.role} {actor.name!r} enrols devices of grid workers only; account "
                f"{account_id} is a {row['role']} (ask an admin)"
            )
        if not row["active"]:
            raise Forbidden(f"account {account_id} is inactive: it cannot enrol a device")
        eid = store.insert_enrolment(
            c,
            account_id=int(account_id),
            code_hash=hash_code(code),
            expires_at=expires,
            created_by=actor.id if actor else None,
        )
        audit.record(
            c,
            actor=actor,
            action="terminal.enrolment",
            resource="account",
            ids=[int(account_id)],
            detail={"enrolment_id": eid, "expires_at": expires.isoformat()},
        )
    uri = enrol_uri(code, base_url)
    return {
        "code": format_code(code),
        "expires_at": expires,
        "uri": uri,
        "qr_svg": qr_svg(uri),
        "enrolment_id": eid,
        "account": {
            "id": int(row["id"]),
            "name": row["name"],
            "role": row["role"],
            "units": list(units),
        },
    }


def redeem(
    bind: Bind,
    code: str,
    *,
    label: str | None = None,
    app_version: str | None = None,
    user_agent: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Redeem an enrolment code on a device: a new terminal with its own bearer token.

    With ``idempotency_key``, a retry with the same code and key (the answer was lost on
    the way) gets the same terminal with a fresh token, and the first token is revoked:
    tokens are never stored, so they cannot be replayed.

    Returns
    -------
    ``terminal_id``, ``token`` (shown this once), ``expires_at`` (of the token),
    ``account`` {id, name, role, units}.

    Raises
    ------
    InvalidInput (parameter ``code``): a malformed, unknown, used or expired code (the
    messages say which); Forbidden: the account is inactive.
    """
    canonical = normalize_code(code)
    shown = format_code(canonical)
    clean_label = check_label(label)
    version = check_app_version(app_version)
    agent = (user_agent or "")[:300] or None
    token = new_token()
    expires = token_expiry(_now(), DEVICE_TOKEN_DAYS)
    principal = "enrolment:" + hash_code(canonical)[:32]
    request = {"label": clean_label, "app_version": version}
    with transaction(bind) as c:
        enrolment = store.enrolment_by_hash(c, hash_code(canonical))
        if enrolment is None:
            raise InvalidInput("code", shown, "an enrolment code issued by an admin (unknown code)")
        first = idempotency.replay_or_claim(
            c, idempotency_key, principal=principal, operation="redeem", request=request
        )
        if first is not None:
            return _reissue(c, first, token, expires)
        if enrolment["used_at"] is not None:
            raise InvalidInput(
                "code",
                shown,
                "an unused enrolment code (this one was used at "
                f"{enrolment['used_at'].isoformat(timespec='seconds')}: ask for a new one)",
            )
        if enrolment["expires_at"] <= enrolment["now"]:
            raise InvalidInput(
                "code",
                shown,
                "an unexpired enrolment code (this one expired at "
                f"{enrolment['expires_at'].isoformat(timespec='seconds')}: ask for a new one)",
            )
        aid = int(enrolment["account_id"])
        row = store_accounts.account_row(c, aid)
        if row is None or not row["active"]:
            raise Forbidden(f"account {aid} is inactive: it cannot enrol a device")
        store.use_enrolment(c, int(enrolment["id"]))
        rec = store_accounts.insert_token(
            c,
            aid,
            hash_token(token),
            label=f"terminal: {clean_label or 'device'}",
            expires_at=expires,
        )
        tid = store.insert_terminal(
            c,
            account_id=aid,
            label=clean_label,
            token_id=int(rec["id"]),
            app_version=version,
            user_agent=agent,
            enrolment_id=int(enrolment["id"]),
        )
        units = store_accounts.account_units(c, aid)
        audit.record(
            c,
            actor=aid,
            action="terminal.enrol",
            resource="terminal",
            ids=[tid],
            detail={"token_id": int(rec["id"]), "app_version": version},
        )
        answer = {
            "terminal_id": tid,
            "expires_at": expires,
            "account": {"id": aid, "name": row["name"], "role": row["role"], "units": list(units)},
        }
        idempotency.remember(
            c, idempotency_key, principal=principal, answer=answer, resource_id=tid
        )
    log.info("terminal %s enrolled for account %s", tid, aid)
    return {**answer, "token": token}


def _reissue(
    conn: Connection, first: dict[str, Any], token: str, expires: datetime
) -> dict[str, Any]:
    """The answer of a retried redemption: the same terminal with a fresh token (the one
    issued first is revoked; it may never have reached the device)."""
    tid = int(first["terminal_id"])
    row = store.terminal_row(conn, tid, for_update=True)
    if row is None or row["revoked_at"] is not None:
        raise InvalidInput("code", "(used)", "an unused enrolment code (its device was revoked)")
    if row["token_id"] is not None:
        store_accounts.revoke_token(conn, int(row["token_id"]))
    rec = store_accounts.insert_token(
        conn,
        int(row["account_id"]),
        hash_token(token),
        label=f"terminal: {row['label'] or 'device'}",
        expires_at=expires,
    )
    store.set_token(conn, tid, int(rec["id"]))
    audit.record(
        conn,
        actor=int(row["account_id"]),
        action="terminal.reissue",
        resource="terminal",
        ids=[tid],
        detail={"token_id": int(rec["id"])},
    )
    return {**first, "expires_at": expires, "token": token}


# --------------------------------------------------------------------------- list, revoke
def list_terminals(
    bind: Bind,
    *,
    actor: Account | None = None,
    account_id: int | None = None,
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Terminals the actor may manage (None: the command line, all), newest first: an
    admin all, a unit admin those of the accounts bound to units inside theirs, a worker
    their own; filtered by ``account_id`` and by ``unit`` (a unit code: accounts bound to
    it or to a unit inside it).

    Each: id, account_id, account_name, label, app_version, user_agent, enrolled_at,
    last_seen_at, revoked_at, revoked_reason, token_revoked_at, token_expires_at, units,
    state (``active``/``revoked``).
    """
    if unit is not None and not (unit.isascii() and unit.isdigit() and 6 <= len(unit) <= 15):
        raise InvalidInput("unit", unit, "a unit code (6, 9, 12 or 15 digits)")
    if actor is None or actor.role == "admin":
        rows = store.terminal_rows(bind, scope=Scope.system(), account_id=account_id, unit=unit)
    elif actor.role in _UNIT_ADMINS:
        rows = store.terminal_rows(bind, scope=Scope.of(actor), account_id=account_id, unit=unit)
    elif actor.role == "worker":
        rows = store.terminal_rows(
            bind, scope=Scope.of(actor), only_account=actor.id, account_id=account_id, unit=unit
        )
    else:
        raise Forbidden(
            f"role {actor.role!r} may not list terminals: admins (and workers their own) may"
        )
    return [_terminal(r) for r in rows]


def get_terminal(bind: Bind, terminal_id: int, *, actor: Account | None = None) -> dict[str, Any]:
    """One terminal the actor may manage; NotFound otherwise."""
    row = store.terminal_row(bind, terminal_id)
    if row is None or not _may_manage(actor, int(row["account_id"]), tuple(row["units"] or ())):
        raise NotFound(f"terminal {terminal_id} does not exist (or is outside your units)")
    return _terminal(row)


def revoke(
    bind: Bind,
    terminal_id: int,
    *,
    reason: str | None = None,
    actor: Account | None = None,
) -> dict[str, Any]:
    """Revoke a device at once: its row and its token (revoking a revoked one is a no-op).
    The worker's other devices and tokens are untouched.

    Raises
    ------
    Forbidden : roles that manage no devices (planner, leader, analyst);
    NotFound : no such terminal, or one the actor may not manage.
    """
    if actor is not None and actor.role not in {"admin", "worker", *_UNIT_ADMINS}:
        raise Forbidden(
            f"role {actor.role!r} may not revoke terminals: admins (and workers their own) may"
        )
    why = " ".join(str(reason).split())[:500] if reason else None
    with transaction(bind) as c:
        row = store.terminal_row(c, terminal_id, for_update=True)
        if row is None or not _may_manage(actor, int(row["account_id"]), tuple(row["units"] or ())):
            raise NotFound(f"terminal {terminal_id} does not exist (or is outside your units)")
        store.revoke_terminal(c, terminal_id, reason=why, revoked_by=actor.id if actor else None)
        if row["token_id"] is not None:
            store_accounts.revoke_token(c, int(row["token_id"]))
        audit.record(
            c,
            actor=actor,
            action="terminal.revoke",
            resource="terminal",
            ids=[int(terminal_id)],
            detail={"account_id": int(row["account_id"])},
        )
        row = store.terminal_row(c, terminal_id)
    assert row is not None
    log.info("terminal %s of account %s revoked", terminal_id, row["account_id"])
    return _terminal(row)


# --------------------------------------------------------------------------- authentication
def revoked_terminal(conn: Connection, token_id: int) -> None:
    """Raise :class:`TerminalRevoked` when a revoked token is a terminal's (called by
    :func:`geogrid.services.accounts.authenticate` on a revoked token)."""
    row = store.terminal_of_token(conn, token_id)
    if row is not None:
        raise TerminalRevoked(int(row["id"]), row["revoked_at"])


def on_authenticated(
    conn: Connection,
    token_id: int,
    *,
    app_version: str | None = None,
    user_agent: str | None = None,
) -> None:
    """Record a device's last-seen time and app version (at most once a minute per device,
    or when the version changes); a token that is no terminal's changes nothing. A
    malformed version header is ignored rather than refusing the request."""
    try:
        version = check_app_version(app_version, "X-App-Version")
    except InvalidInput:
        version = None
    store.touch_terminal(
        conn,
        token_id,
        app_version=version,
        user_agent=(user_agent or "")[:300] or None,
        every=TOUCH_EVERY,
    )
