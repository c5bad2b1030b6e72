"""Accounts: tokens stored only hashed, authentication, role/unit scope, the users CLI."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import small_city
from small_city import GRIDS
from sqlalchemy import text

from api.auth import require_role
from geogrid.core.accounts import (
    Account,
    can_act_on,
    check_units_for_role,
    hash_token,
    new_token,
)
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from geogrid.services.accounts import add_user, authenticate, list_users

ROOT = Path(__file__).resolve().parents[1]
HERE = {
    "grid_code": GRIDS[0],
    "community_code": "450902001001",
    "street_code": "450902001",
    "district_code": "450902",
}
OTHER_STREET = {
    "grid_code": "450902002001001",
    "community_code": "450902002001",
    "street_code": "450902002",
    "district_code": "450902",
}


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


# --------------------------------------------------------------------------- pure
def test_tokens_are_random_and_hashed_with_sha256():
    a, b = new_token(), new_token()
    assert a != b and len(a) == 43
    assert hash_token(a) == hashlib.sha256(a.encode()).hexdigest()


@pytest.mark.parametrize(
    ("role", "units", "here", "other_street"),
    [
        ("worker", (GRIDS[0],), True, False),
        ("worker", (GRIDS[1],), False, False),
        ("community_admin", ("450902001001",), True, False),
        ("street_admin", ("450902001",), True, False),
        ("street_admin", ("450902002",), False, True),
        ("district_admin", ("450902",), True, True),
        ("admin", (), True, True),
        ("leader", (), False, False),
        ("analyst", (), False, False),
        ("planner", (), False, False),
    ],
)
def test_scope(role, units, here, other_street):
    acc = Account(1, "x", role, units)
    assert can_act_on(acc, HERE) is here
    assert can_act_on(acc, OTHER_STREET) is other_street


def test_inactive_account_acts_nowhere():
    assert not can_act_on(Account(1, "x", "admin", (), active=False), HERE)


@pytest.mark.parametrize(
    ("role", "units", "match"),
    [
        ("worker", [], "at least one grid code"),
        ("worker", ["450902001001"], "grid code of 15 digits"),
        ("street_admin", ["450902001001001"], "street code of 9 digits"),
        ("leader", ["450902"], "no units for role 'leader'"),
        ("boss", [], "role='boss'"),
    ],
)
def test_units_must_fit_the_role(role, units, match):
    with pytest.raises(InvalidInput, match=match):
        check_units_for_role(role, units)


def test_require_role_dependency():
    dep = require_role("admin", "leader")
    leader = Account(1, "x", "leader")
    assert dep(leader) is leader
    with pytest.raises(Forbidden, match="allowed roles are admin, leader"):
        dep(Account(2, "y", "worker", (GRIDS[0],)))
    with pytest.raises(ValueError, match="unknown roles"):
        require_role("boss")


# --------------------------------------------------------------------------- store
def test_database_never_holds_the_plain_token(city):
    with city.engine.connect() as conn:
        dump = "\n".join(conn.execute(text("SELECT a::text FROM account a")).scalars())
        dump += "\n".join(conn.execute(text("SELECT e::text FROM incident_event e")).scalars())
        dump += "\n".join(conn.execute(text("SELECT t::text FROM account_token t")).scalars())
        hashes = dict(
            conn.execute(
                text(
                    "SELECT a.ref, t.token_hash FROM account a "
                    "JOIN account_token t ON t.account_id = a.id"
                )
            ).all()
        )
    for key, token in city.tokens.items():
        assert token not in dump
        assert hashes[f"T-{key}"] == hashlib.sha256(token.encode()).hexdigest()


def test_authenticate(city):
    acc = authenticate(city.engine, city.tokens["w3"])
    assert (acc.name, acc.role, acc.units) == ("陈芳", "worker", (GRIDS[2], GRIDS[3]))
    with pytest.raises(Unauthorized, match="unknown"):
        authenticate(city.engine, city.tokens["w3"] + "x")
    with pytest.raises(Unauthorized, match="bearer token is required"):
        authenticate(city.engine, None)


def test_deactivated_account_cannot_authenticate(city):
    acc, token = add_user(city.engine, "临时网格员", "worker", units=[GRIDS[1]])
    assert authenticate(city.engine, token).id == acc.id
    with city.engine.begin() as conn:
        conn.execute(text("UPDATE account SET active = false WHERE id = :i"), {"i": acc.id})
    with pytest.raises(Unauthorized):
        authenticate(city.engine, token)


def test_add_user_refuses_bad_input(city):
    with pytest.raises(Conflict, match="ref 'T-w1' already exists"):
        add_user(city.engine, "重名", "worker", units=[GRIDS[0]], ref="T-w1")
    with pytest.raises(InvalidInput, match="role"):
        add_user(city.engine, "x", "mayor")
    with pytest.raises(InvalidInput, match="name"):
        add_user(city.engine, " ", "leader")
    with pytest.raises(InvalidInput, match="unknown grid 450902001001009"):
        add_user(city.engine, "x", "worker", units=["450902001001009"])
    with pytest.raises(InvalidInput, match="unknown street 450902009"):
        add_user(city.engine, "x", "street_admin", units=["450902009"])


def test_list_users_has_no_hashes(city):
    df = list_users(city.engine)
    assert "token_hash" not in df.columns
    assert df.set_index("ref").loc["T-w3", "units"] == f"{GRIDS[2]},{GRIDS[3]}"


def test_list_users_is_scoped(city):
    """A unit scope lists only the accounts bound inside its units; the public none."""
    everyone = list_users(city.engine)
    w1 = everyone.set_index("ref").loc["T-w1"]
    mine = list_users(
        city.engine,
        scope=Scope(role="worker", account_id=int(w1["id"]), units=(GRIDS[0],), kind="units"),
    )
    assert set(mine["units"]) == {GRIDS[0]}
    assert 0 < len(mine) < len(everyone)
    street = list_users(
        city.engine,
        scope=Scope(role="street_admin", account_id=None, units=(small_city.STREET,), kind="units"),
    )
    expected = {  # bound to a unit inside the street (the district admin's is above it)
        r
        for r, u in zip(everyone["ref"], everyone["units"], strict=True)
        if any(c.startswith(small_city.STREET) for c in u.split(",") if c)
    }
    assert "T-district" in set(everyone["ref"]) - expected
    assert set(street["ref"]) == expected
    assert list_users(city.engine, scope=Scope.public()).empty


# --------------------------------------------------------------------------- CLI
def _cli(city, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEOGRID_DATABASE_URL": city.url}
    return subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "users", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_users_add_prints_the_token_once(city):
    res = _cli(city, "add", "王小红", "--role", "worker", "--unit", GRIDS[3], "--ref", "W-9")
    assert res.returncode == 0, res.stderr
    token = re.search(r"token: (\S+)", res.stdout).group(1)
    assert "shown only once" in res.stderr
    acc = authenticate(city.engine, token)
    assert (acc.name, acc.units, acc.ref) == ("王小红", (GRIDS[3],), "W-9")
    listing = _cli(city, "list")
    assert listing.returncode == 0, listing.stderr
    assert "王小红" in listing.stdout and token not in listing.stdout
    bad = _cli(city, "add", "x", "--role", "worker", "--unit", "450902")
    assert bad.returncode == 2 and "grid code of 15 digits" in bad.stderr
    unknown = _cli(city, "add", "x", "--role", "worker", "--unit", "450902001001099")
    assert unknown.returncode == 2
    assert "unknown grid 450902001001099" in unknown.stderr, unknown.stderr
    assert "Traceback" not in unknown.stderr
