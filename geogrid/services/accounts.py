"""Accounts: people who sign in (passwords, sessions, lock-out) and tokens for machines
and devices (issue with an expiry, list, revoke, rotate, authenticate).

Rules come from :mod:`geogrid.core.accounts` (roles, unit codes, token hashing),
:mod:`geogrid.core.passwords` (policy, argon2id) and :mod:`geogrid.core.credentials`
(lifetimes, CSRF tokens, lock-out); rows are read and written with
:mod:`geogrid.store.accounts`. A plain token, session id or password is returned once
(or never) and not stored, logged or put in an error message.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine

from geogrid.core.accounts import (
    UNIT_ROLES,
    Account,
    check_role,
    check_units_for_role,
    hash_token,
    new_token,
)
from geogrid.core.credentials import (
    DEFAULT_TOKEN_DAYS,
    MAX_FAILED_LOGINS,
    SESSION_LIFETIME,
    csrf_token_for,
    hash_secret,
    lock_after_failure,
    new_session_id,
    seconds_locked,
    token_expiry,
    token_state,
)
from geogrid.core.passwords import (
    burn_verify,
    check_password,
    check_username,
    hash_password,
    needs_rehash,
    verify_password,
)
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, Forbidden, InvalidInput, Locked, NotFound, Unauthorized
from geogrid.services import audit, terminals
from geogrid.store import accounts as store
from geogrid.store.engine import autocommit, transaction

__all__ = [
    "TOKEN_CACHE_TTL",
    "TOKEN_CACHE_TTL_WATCHED",
    "TokenCache",
    "TokenInfo",
    "SignedIn",
    "SessionInfo",
    "add_user",
    "authenticate",
    "cached_account",
    "get_account",
    "find_account",
    "list_users",
    "issue_token",
    "list_tokens",
    "revoke_token",
    "revoke_all_tokens",
    "rotate_token",
    "login",
    "logout",
    "session_account",
    "session_info",
    "whoami",
    "change_password",
    "set_password",
    "unlock",
]

log = logging.getLogger("geogrid.accounts")
_WRONG = "wrong username or password"
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class TokenInfo:
    """A token's record (never the token itself). ``state``: active, expired or revoked."""

    id: int
    account_id: int
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    state: str

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class SignedIn:
    """A new browser session: ``session_id`` goes into the HttpOnly cookie only."""

    account: Account
    username: str
    session_id: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    """Who a session (or token) belongs to; ``csrf_token`` only for a cookie session."""

    account: Account
    username: str | None
    csrf_token: str | None
    expires_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _account(row: dict[str, Any], units: tuple[str, ...]) -> Account:
    return Account(int(row["id"]), row["name"], row["role"], units, row["ref"], bool(row["active"]))


def _token_info(row: dict[str, Any], now: datetime | None = None) -> TokenInfo:
    state = token_state(row["expires_at"], row["revoked_at"], now or _now())
    return TokenInfo(
        id=int(row["id"]),
        account_id=int(row["account_id"]),
        label=row["label"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        state=state,
    )


def _check_units_exist(conn: Connection, role: str, codes: list[str]) -> None:
    level = UNIT_ROLES.get(role)
    if level is None or not codes:
        return
    missing = sorted(set(codes) - store.published_unit_codes(conn, level, codes))
    if missing:
        raise InvalidInput(
            "unit",
            missing[0] if len(missing) == 1 else missing,
            f"a {level} of the published boundary version (unknown {level} {', '.join(missing)})",
        )


# --------------------------------------------------------------------------- accounts
def add_user(
    bind: Engine | Connection,
    name: str,
    role: str,
    units: Iterable[str] = (),
    ref: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    token_days: float | None = DEFAULT_TOKEN_DAYS,
) -> tuple[Account, str]:
    """Create an account and return it with its first token (the only time it is seen).

    Parameters
    ----------
    name : display name (not empty)
    role : one of :data:`geogrid.core.accounts.ROLES`
    units : unit codes (grid codes for a worker, the community/street/district code for
        an admin of that level; none for other roles); each must be a unit of that level
        in the published boundary version
    ref : optional external reference (staff number), unique
    username, password : a login for the web page (both or neither; the password must
        meet :func:`geogrid.core.passwords.check_password`)
    token_days : lifetime of the first token in days (default 90)

    Raises
    ------
    InvalidInput : empty name, unknown role, units that do not fit the role or do not
        exist, a bad username or password.
    Conflict : ``ref`` or ``username`` is taken.
    """
    clean = str(name).strip() if name is not None else ""
    if not clean:
        raise InvalidInput("name", name, "a non-empty name")
    check_role(role)
    codes = check_units_for_role(role, units)
    login = check_username(username) if username is not None else None
    if (login is None) != (password is None):
        raise InvalidInput("username", username, "a username and a password together (or neither)")
    pw_hash = hash_password(check_password(password, login)) if password is not None else None
    token = new_token()
    expires = token_expiry(_now(), token_days)
    with transaction(bind) as c:
        _check_units_exist(c, role, codes)
        if ref is not None:
            taken = store.account_id_by_ref(c, ref)
            if taken is not None:
                raise Conflict(f"an account with ref {ref!r} already exists (id {taken})")
        if login is not None:
            taken = store.account_id_by_username(c, login)
            if taken is not None:
                raise Conflict(f"the username {login!r} is taken (account {taken})")
        aid = store.insert_account(
            c,
            name=clean,
            role=role,
            ref=ref,
            units=codes,
            username=login,
            password_hash=pw_hash,
        )
        store.insert_token(c, aid, hash_token(token), label="first token", expires_at=expires)
        audit.record(
            c,
            actor=None,
            action="account.add",
            resource="account",
            ids=[aid],
            detail={"role": role, "units": codes},
        )
    return Account(aid, clean, role, tuple(codes), ref, True), token


def get_account(bind: Engine | Connection, account_id: int) -> Account:
    """One account (active or not); NotFound when it does not exist."""
    with transaction(bind) as c:
        row = store.account_row(c, account_id)
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        units = store.account_units(c, row["id"])
    return _account(row, units)


def find_account(bind: Engine | Connection, key: str) -> Account:
    """The account whose username, ref, name or id is ``key``.

    Raises
    ------
    NotFound : none; Conflict : several (use the id or the username).
    """
    with transaction(bind) as c:
        ids = store.find_account_ids(c, str(key).strip())
    if not ids:
        raise NotFound(f"no account has the username, ref, name or id {key!r}")
    if len(ids) > 1:
        raise Conflict(f"{len(ids)} accounts match {key!r} (ids {ids}): give the id or username")
    return get_account(bind, ids[0])


def list_users(bind: Engine | Connection, *, scope: Scope | None = None) -> pd.DataFrame:
    """The accounts ``scope`` may list (default: every account, the command line's system
    scope) with their units (comma-separated); no hashes.

    Returns
    -------
    DataFrame: id, name, username, role, ref, active, created_at, units.
    """
    rows = store.user_rows(bind, scope=Scope.system() if scope is None else scope)
    return pd.DataFrame(rows, columns=list(store.USER_COLUMNS))


# --------------------------------------------------------------------------- tokens
#: seconds a process answers a token from its :class:`TokenCache` (issue 10) while no
#: listener tells it of changes
TOKEN_CACHE_TTL = 2.0
#: the same while the process listens to ``geogrid_auth`` (migration 0021: every change
#: of an account, token, unit binding, team or terminal notifies, and the cache is
#: emptied); an entry is read again this often (the token's ``last_used_at`` with it)
TOKEN_CACHE_TTL_WATCHED = 60.0


class TokenCache:
    """The accounts of tokens authenticated lately, by token hash (one per running service,
    on its ``AppContext``).

    Why: a report's token lookup was a transaction of its own (a pool checkout, BEGIN, two
    SELECTs, COMMIT) per request — a fifth of a report's database round trips. A token
    revoked or rotated by this process (``/tokens``, ``/session``, ``/users``,
    ``/terminals`` writes: :meth:`clear`) is refused at once. One revoked elsewhere (the
    command line, another worker) is refused as soon as the process's listener hears of
    it (:meth:`watch`: the ``geogrid_auth`` notification empties the cache), or within
    :data:`TOKEN_CACHE_TTL` seconds while no listener is up. An entry never outlives the
    token's own expiry, and the once-a-minute ``last_used_at`` write still happens (an
    entry is refreshed through :func:`authenticate` every :data:`TOKEN_CACHE_TTL_WATCHED`
    seconds at most).

    An entry read before a change and stored after the change's notification emptied the
    cache would be stale: :func:`authenticate` notes :attr:`generation` before its query
    and :meth:`put` drops the entry when the cache was emptied since.
    """

    def __init__(
        self,
        ttl: float = TOKEN_CACHE_TTL,
        size: int = 10_000,
        watched_ttl: float = TOKEN_CACHE_TTL_WATCHED,
    ) -> None:
        self.ttl, self.size, self.watched_ttl = ttl, size, watched_ttl
        self.watched = False
        #: how many times the cache was emptied
        self.generation = 0
        self._d: dict[str, tuple[float, datetime | None, Account]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> Account | None:
        """The cached account of a token hash, or None (absent, stale or expired)."""
        hit = self._d.get(token_hash)
        if hit is None:
            return None
        until, expires_at, account = hit
        if time.monotonic() >= until or (expires_at is not None and _now() >= expires_at):
            self._d.pop(token_hash, None)
            return None
        return account

    def put(
        self,
        token_hash: str,
        account: Account,
        expires_at: datetime | None,
        generation: int | None = None,
    ) -> None:
        """Remember a token's account (bounded: full → emptied) — unless the cache was
        emptied since ``generation`` (the value of :attr:`generation` before the read)."""
        ttl = self.watched_ttl if self.watched else self.ttl
        # issue 10: each entry lives 75–100 % of the TTL, so tokens first seen together (a
        # fleet after a restart, a bench's accounts) are not all read again in the same
        # second a minute later — that burst of sign-in reads was the slowest 10 s of a
        # minute of reports at 200/s
        ttl *= 0.75 + 0.25 * random.random()  # noqa: S311 - spreading expiries, not a secret
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            if len(self._d) >= self.size:
                self._d.clear()
            self._d[token_hash] = (time.monotonic() + ttl, expires_at, account)

    def clear(self) -> None:
        """Forget every token (after a revocation, rotation or account change)."""
        with self._lock:
            self._d.clear()
            self.generation += 1

    def watch(self, up: bool) -> None:
        """Whether a listener of ``geogrid_auth`` empties this cache on every change (its
        entries then live :attr:`watched_ttl`); emptied at every change of state (what
        was notified while the listener was down was not heard)."""
        self.watched = up
        self.clear()


def cached_account(token: str, cache: TokenCache) -> Account | None:
    """The account of a token :func:`authenticate` checked in the last seconds (``cache``),
    or None: ask :func:`authenticate`. No query (the API calls it on its event loop)."""
    return cache.get(hash_token(token))


def authenticate(
    bind: Engine | Connection,
    token: str | None,
    *,
    app_version: str | None = None,
    user_agent: str | None = None,
    cache: TokenCache | None = None,
) -> Account:
    """The active account holding ``token`` (a live token: not expired, not revoked).

    A terminal's token (issue 13) also records the device's last-seen time, app version
    (``app_version``, the ``X-App-Version`` header) and user agent, in the same once-a-
    minute write as the token's ``last_used_at``. With ``cache`` (the service's
    :class:`TokenCache`) a token seen in the last seconds is answered without a query.

    Raises
    ------
    Unauthorized : no token, an unknown, expired or revoked one, an inactive account;
    :class:`~geogrid.core.terminals.TerminalRevoked` (401, ``terminal_revoked``) for the
    token of a revoked terminal.
    """
    if not token:
        raise Unauthorized("a bearer token is required: send 'Authorization: Bearer <token>'")
    digest = hash_token(token)
    generation = None
    if cache is not None:
        known = cache.get(digest)
        if known is not None:
            return known
        generation = cache.generation
    # autocommit: a read (and a once-a-minute touch) needs no BEGIN/COMMIT round trips
    with autocommit(bind) as c:
        row = store.token_by_hash(c, digest)
        if row is None or not row["active"]:
            raise Unauthorized("unknown or revoked token")
        now = _now()
        state = token_state(row["expires_at"], row["revoked_at"], now)
        if state == "revoked":
            terminals.revoked_terminal(c, row["token_id"])  # a device's: terminal_revoked
            raise Unauthorized(f"token {row['token_id']} was revoked")
        if state == "expired":
            raise Unauthorized(
                f"token {row['token_id']} expired at {row['expires_at'].isoformat()}: "
                "ask for a new one (geogrid users rotate)"
            )
        last = row["last_used_at"]
        if last is None or now - last > _TOUCH_EVERY:  # one write a minute at most
            store.touch_token(c, row["token_id"])
            terminals.on_authenticated(
                c, row["token_id"], app_version=app_version, user_agent=user_agent
            )
        units = tuple(str(u) for u in row["units"] or ())
    account = _account(row, units)
    if cache is not None:
        cache.put(digest, account, row["expires_at"], generation)
    return account


def _may_manage(actor: Account | None, account_id: int) -> None:
    if actor is not None and actor.role != "admin" and actor.id != account_id:
        raise Forbidden(f"{actor.role} {actor.name!r} may manage only their own tokens")


def issue_token(
    bind: Engine | Connection,
    account_id: int,
    *,
    days: float | None = DEFAULT_TOKEN_DAYS,
    label: str | None = None,
    actor: Account | None = None,
) -> tuple[TokenInfo, str]:
    """A new token for an account (shown once) expiring in ``days`` days (0: at once).

    ``actor`` (None: the command line) must be the account itself or an admin.
    """
    _may_manage(actor, account_id)
    token = new_token()
    expires = token_expiry(_now(), days)
    with transaction(bind) as c:
        row = store.account_row(c, account_id)
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        rec = store.insert_token(c, account_id, hash_token(token), label=label, expires_at=expires)
        audit.record(
            c,
            actor=actor,
            action="token.issue",
            resource="account",
            ids=[account_id],
            detail={"token_id": rec["id"]},
        )
    return _token_info(rec), token


def list_tokens(
    bind: Engine | Connection, account_id: int | None = None, *, actor: Account | None = None
) -> list[TokenInfo]:
    """Tokens of one account (all accounts when None: admins and the command line only)."""
    if actor is not None and actor.role != "admin":
        if account_id is None:
            account_id = actor.id
        _may_manage(actor, account_id)
    now = _now()
    return [_token_info(r, now) for r in store.token_rows(bind, account_id)]


def revoke_token(
    bind: Engine | Connection, token_id: int, *, actor: Account | None = None
) -> TokenInfo:
    """Revoke a token (at once; revoking a revoked one is a no-op). NotFound if none."""
    with transaction(bind) as c:
        row = store.token_row(c, token_id, for_update=True)
        if row is None:
            raise NotFound(f"token {token_id} does not exist")
        _may_manage(actor, int(row["account_id"]))
        store.revoke_token(c, token_id)
        row = store.token_row(c, token_id)
        audit.record(
            c,
            actor=actor,
            action="token.revoke",
            resource="account",
            ids=[int(row["account_id"])] if row else None,
            detail={"token_id": token_id},
        )
    assert row is not None
    log.info("token %s of account %s revoked", token_id, row["account_id"])
    return _token_info(row)


def revoke_all_tokens(bind: Engine | Connection, account_id: int) -> int:
    """Revoke every live token of an account and end its sessions; returns the tokens."""
    with transaction(bind) as c:
        if store.account_row(c, account_id) is None:
            raise NotFound(f"account {account_id} does not exist")
        n = store.revoke_account_tokens(c, account_id)
        store.revoke_account_sessions(c, account_id)
        audit.record(
            c,
            actor=None,
            action="token.revoke_all",
            resource="account",
            ids=[account_id],
            detail={"tokens": n},
        )
    log.info("%d token(s) of account %s revoked", n, account_id)
    return n


def rotate_token(
    bind: Engine | Connection,
    token_id: int,
    *,
    days: float | None = DEFAULT_TOKEN_DAYS,
    actor: Account | None = None,
) -> tuple[TokenInfo, str]:
    """Replace a token: a new one (same label, ``days`` days) is issued and the old one
    revoked in one transaction. Returns the new record and token (shown once).

    Raises
    ------
    NotFound : no such token; Conflict : it is revoked already.
    """
    token = new_token()
    expires = token_expiry(_now(), days)
    with transaction(bind) as c:
        old = store.token_row(c, token_id, for_update=True)
        if old is None:
            raise NotFound(f"token {token_id} does not exist")
        _may_manage(actor, int(old["account_id"]))
        if old["revoked_at"] is not None:
            raise Conflict(f"token {token_id} is revoked: issue a new one instead")
        store.revoke_token(c, token_id)
        rec = store.insert_token(
            c, int(old["account_id"]), hash_token(token), label=old["label"], expires_at=expires
        )
        audit.record(
            c,
            actor=actor,
            action="token.rotate",
            resource="account",
            ids=[int(old["account_id"])],
            detail={"token_id": token_id, "new": rec["id"]},
        )
    log.info("token %s rotated to %s", token_id, rec["id"])
    return _token_info(rec), token


# --------------------------------------------------------------------------- people
def login(
    bind: Engine | Connection, username: str, password: str, ip: str | None = None
) -> SignedIn:
    """Check a username and password and open a browser session.

    After :data:`~geogrid.core.credentials.MAX_FAILED_LOGINS` wrong passwords in a row the
    account is locked for :data:`~geogrid.core.credentials.LOCKOUT`.

    Raises
    ------
    Unauthorized : wrong username or password (the same message for both), an inactive
        account or one without a password.
    Locked : sign-in is locked (``retry_after`` seconds).
    """
    try:
        login_name = check_username(username)
    except InvalidInput:
        burn_verify(password)
        raise Unauthorized(_WRONG) from None
    refusal: Exception | None = None
    signed: SignedIn | None = None
    with transaction(bind) as c:
        row = store.login_row(c, login_name)
        if row is None or not row["active"] or not row["password_hash"]:
            burn_verify(password)
            refusal = Unauthorized(_WRONG)
        elif (wait := seconds_locked(row["locked_until"], row["now"])) > 0:
            burn_verify(password)
            refusal = Locked(
                f"sign-in for {login_name!r} is locked after {MAX_FAILED_LOGINS} failed "
                f"attempts: try again in {wait} s or ask an admin (geogrid users unlock)",
                retry_after=wait,
            )
        elif not verify_password(row["password_hash"], password):
            failed = int(row["failed_logins"]) + 1
            until = lock_after_failure(failed, row["now"])
            store.record_login_failure(c, row["id"], 0 if until else failed, until)
            log.warning(
                "sign-in failed for account %s from %s (%d in a row)", row["id"], ip, failed
            )
            refusal = Unauthorized(_WRONG)
        else:
            upgraded = hash_password(password) if needs_rehash(row["password_hash"]) else None
            store.record_login_success(c, row["id"], upgraded)
            store.prune_sessions(c, row["id"])
            sid = new_session_id()
            csrf = csrf_token_for(sid)
            expires = row["now"] + SESSION_LIFETIME
            store.insert_session(
                c,
                session_hash=hash_secret(sid),
                account_id=row["id"],
                csrf_hash=hash_secret(csrf),
                expires_at=expires,
                ip=ip,
            )
            units = store.account_units(c, row["id"])
            signed = SignedIn(_account(row, units), login_name, sid, csrf, expires)
    if refusal is not None:  # raised after the commit so the failure count is kept
        raise refusal
    assert signed is not None
    log.info("account %s signed in from %s", signed.account.id, ip)
    return signed


def session_info(bind: Engine | Connection, session_id: str | None) -> SessionInfo:
    """The account of a live browser session, with its CSRF token.

    Raises
    ------
    Unauthorized : no, an unknown, ended or expired session.
    """
    if not session_id:
        raise Unauthorized("not signed in: POST /session with a username and password")
    with transaction(bind) as c:
        row = store.session_by_hash(c, hash_secret(session_id))
        if row is None or not row["active"]:
            raise Unauthorized("the session has ended or expired: sign in again")
        units = store.account_units(c, row["id"])
    return SessionInfo(
        _account(row, units), row["username"], csrf_token_for(session_id), row["expires_at"]
    )


def session_account(bind: Engine | Connection, session_id: str | None) -> Account:
    """The account of a live browser session (see :func:`session_info`)."""
    return session_info(bind, session_id).account


def whoami(
    bind: Engine | Connection, *, token: str | None = None, session_id: str | None = None
) -> SessionInfo:
    """Who is calling: the bearer token's account (no CSRF token), else the session's.

    Raises
    ------
    Unauthorized : neither a live token nor a live session.
    """
    if token:
        acc = authenticate(bind, token)
        row = store.account_row(bind, acc.id)
        return SessionInfo(acc, None if row is None else row["username"], None, None)
    return session_info(bind, session_id)


def logout(bind: Engine | Connection, session_id: str | None) -> bool:
    """End a browser session; True when one was live."""
    if not session_id:
        return False
    with transaction(bind) as c:
        return store.revoke_session(c, hash_secret(session_id)) > 0


def change_password(
    bind: Engine | Connection,
    account_id: int,
    old_password: str,
    new_password: str,
    *,
    keep_session: str | None = None,
) -> None:
    """A person changes their own password (the old one is required); their other
    sessions end (``keep_session``, the current one, stays).

    Raises
    ------
    Forbidden : the old password is wrong; InvalidInput : the new one breaks the policy.
    """
    with transaction(bind) as c:
        row = store.account_row(c, account_id)
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        check_password(new_password, row["username"])
        if not verify_password(store.password_hash_of(c, account_id), old_password):
            raise Forbidden("the current password is wrong")
        store.set_password(c, account_id, hash_password(new_password))
        keep = hash_secret(keep_session) if keep_session else None
        store.revoke_account_sessions(c, account_id, keep_hash=keep)
        audit.record(
            c, actor=account_id, action="account.password", resource="account", ids=[account_id]
        )
    log.info("account %s changed its password", account_id)


def set_password(
    bind: Engine | Connection,
    account_id: int,
    password: str,
    *,
    username: str | None = None,
    actor: Account | None = None,
) -> tuple[Account, str]:
    """An admin sets (resets) an account's password, and its username when given or when
    it has none yet (``username`` required then). The lock is cleared and every session of
    the account ends. ``actor`` (None: the command line) must be an admin.

    Returns
    -------
    The account and its username.
    """
    if actor is not None and actor.role != "admin":
        raise Forbidden(f"role {actor.role!r} may not reset passwords: only an admin may")
    login_name = check_username(username) if username is not None else None
    with transaction(bind) as c:
        row = store.account_row(c, account_id)
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        if login_name is None and row["username"] is None:
            raise InvalidInput("username", None, "a username: this account has none yet")
        if login_name is not None and login_name != row["username"]:
            taken = store.account_id_by_username(c, login_name)
            if taken is not None:
                raise Conflict(f"the username {login_name!r} is taken (account {taken})")
        check_password(password, login_name or row["username"])
        store.set_password(c, account_id, hash_password(password), username=login_name)
        store.revoke_account_sessions(c, account_id)
        audit.record(
            c, actor=actor, action="account.password_reset", resource="account", ids=[account_id]
        )
        units = store.account_units(c, account_id)
        row = store.account_row(c, account_id)
    assert row is not None
    log.info("password of account %s set by an admin", account_id)
    return _account(row, units), str(row["username"])


def unlock(bind: Engine | Connection, account_id: int) -> None:
    """Clear an account's sign-in lock and failure count. NotFound if none."""
    with transaction(bind) as c:
        if not store.unlock(c, account_id):
            raise NotFound(f"account {account_id} does not exist")
        audit.record(c, actor=None, action="account.unlock", resource="account", ids=[account_id])
    log.info("sign-in of account %s unlocked", account_id)
