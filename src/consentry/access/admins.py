"""Administrators (salted scrypt hashes, roles) and API clients (hashed keys)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, delete, insert, select, update

from ..ledger import chain
from ..ledger.store import reader

from ..errors import InputError
from ..timeutil import to_micros
from .sessions import end_admin_sessions
from .tables import admins, api_clients

ROLES = ("reviewer", "viewer")  # reviewers may record rejections; viewers only look
SCOPES = ("read", "write")  # read: GET; write: POST
_N, _R, _P = 2**14, 8, 1
_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash to check unknown names against: the same scrypt work as a known
    name, so the answer's timing does not tell which names exist."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@dataclass(frozen=True)
class Admin:
    username: str
    role: str

    @property
    def may_decide(self) -> bool:
        return self.role == "reviewer"


class Admins:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, username: str, password: str, role: str = "reviewer") -> Admin:
        if role not in ROLES:
            raise InputError(f"unknown role '{role}'", fix=f"use one of {', '.join(ROLES)}")
        if len(password) < 12:
            raise InputError("the password is too short", fix="use at least 12 characters")
        with self.engine.begin() as conn:
            exists = conn.execute(select(admins.c.username).where(admins.c.username == username)).first()
            values = {"password_hash": hash_password(password), "role": role}
            if exists:
                conn.execute(update(admins).where(admins.c.username == username).values(**values))
                end_admin_sessions(conn, username)  # a new password ends every session at once
            else:
                conn.execute(
                    insert(admins).values(username=username, created_us=to_micros(datetime.now(UTC)), **values)
                )
            chain.append(conn, [chain.Record("admin_set", {"username": username, "role": role, "new": not exists}, subject=username)])
        return Admin(username, role)

    def remove(self, username: str) -> bool:
        """Remove an administrator and end their sessions at once."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(admins).where(admins.c.username == username)).rowcount == 1
            if done:
                end_admin_sessions(conn, username)
                chain.append(conn, [chain.Record("admin_removed", {"username": username}, subject=username)])
        return done

    def authenticate(self, username: str, password: str) -> Admin | None:
        with reader(self.engine).connect() as conn:
            row = conn.execute(select(admins).where(admins.c.username == username)).mappings().first()
        if row is None:
            check_password(password, _dummy())
            return None
        return Admin(row["username"], row["role"]) if check_password(password, row["password_hash"]) else None

    def get(self, username: str) -> Admin | None:
        with reader(self.engine).connect() as conn:
            row = conn.execute(select(admins).where(admins.c.username == username)).mappings().first()
        return Admin(row["username"], row["role"]) if row else None


#: Keys looked up in one statement at most (a SQLite statement takes at most 999 parameters).
_VERIFY_CHUNK = 100


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClients:
    """Platform clients of the JSON API. A key is shown once, stored hashed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # verify() runs on every API request, on the server's event loop: one
        # indexed SELECT straight through the DB-API (compiled once per number of
        # keys asked together), not SQLAlchemy's Connection machinery with its
        # BEGIN and ROLLBACK.
        self._verify_sql: dict[int, str] = {}
        self._verify_positional = engine.dialect.paramstyle in ("qmark", "numeric", "format")
        # SQLite's connections are already in autocommit (store._sqlite_pragmas): a
        # lone SELECT is its own read transaction. Others (psycopg) are switched to
        # autocommit for the query, so it needs no transaction to end.
        self._switch_autocommit = engine.dialect.name != "sqlite"

    def _verify_sql_for(self, n: int) -> str:
        """The lookup of `n` key hashes, compiled once for this database's dialect."""
        if n not in self._verify_sql:
            stmt = select(api_clients.c.key_hash, api_clients.c.client_id, api_clients.c.scopes).where(
                api_clients.c.key_hash.in_([bindparam(f"h{i}") for i in range(n)]), api_clients.c.revoked_us.is_(None)
            )
            self._verify_sql[n] = str(stmt.compile(dialect=self.engine.dialect))
        return self._verify_sql[n]

    def create(self, name: str, scopes: tuple[str, ...] | list[str] = SCOPES) -> tuple[str, str]:
        wanted = sorted(set(scopes), key=SCOPES.index) if set(scopes) <= set(SCOPES) else None
        if not wanted:
            raise InputError(f"unknown scopes {', '.join(scopes) or '(none)'}", fix=f"use {' and/or '.join(SCOPES)}")
        client_id = "cl_" + secrets.token_hex(6)
        key = f"csk_{secrets.token_urlsafe(32)}"
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_clients).values(
                    client_id=client_id, name=name, key_hash=_key_hash(key), created_us=to_micros(datetime.now(UTC)),
                    scopes=",".join(wanted),
                )
            )
            chain.append(conn, [chain.Record(
                "api_client_created", {"client_id": client_id, "name": name, "scopes": wanted}, subject=client_id)])
        return client_id, key

    def list(self) -> list[dict]:
        """Every client, revoked ones too; never a key nor its hash."""
        cols = [api_clients.c[n] for n in ("client_id", "name", "scopes", "created_us", "revoked_us")]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(*cols).order_by(api_clients.c.created_us)).mappings()]

    def verify(self, key: str) -> str | None:
        """The client id for a valid, unrevoked key (see verify_client)."""
        found = self.verify_client(key)
        return found[0] if found else None

    def verify_client(self, key: str) -> tuple[str, frozenset[str]] | None:
        """(client id, scopes) for a valid, unrevoked key. Asks the database on every
        call (never cached), so a revoked key is refused from the next request on,
        in every process."""
        return self.verify_clients([key]).get(key)

    def verify_clients(self, keys: Collection[str]) -> dict[str, tuple[str, frozenset[str]]]:
        """`verify_client` for several keys in one question to the database (the
        server asks once for the requests that arrived together, center/keychecks.py):
        key -> (client id, scopes), for the valid, unrevoked ones only."""
        by_hash = {_key_hash(k): k for k in keys}
        hashes = list(by_hash)
        rows: list[tuple] = []
        raw = self.engine.raw_connection()  # pooled; returned below
        try:
            dbapi = raw.dbapi_connection
            if self._switch_autocommit:
                dbapi.autocommit = True
            cur = dbapi.cursor()
            try:
                for i in range(0, len(hashes), _VERIFY_CHUNK):
                    chunk = hashes[i : i + _VERIFY_CHUNK]
                    params = tuple(chunk) if self._verify_positional else {f"h{j}": h for j, h in enumerate(chunk)}
                    cur.execute(self._verify_sql_for(len(chunk)), params)
                    rows += cur.fetchall()
            finally:
                cur.close()
            if self._switch_autocommit:
                dbapi.autocommit = False
        except BaseException:
            raw.invalidate()  # in an unknown state: not back into the pool
            raise
        finally:
            raw.close()
        return {by_hash[h]: (str(client), frozenset(str(scopes).split(","))) for h, client, scopes in rows}

    def revoke(self, client_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_clients)
                .where(api_clients.c.client_id == client_id, api_clients.c.revoked_us.is_(None))
                .values(revoked_us=to_micros(datetime.now(UTC)))
            )
            if done.rowcount == 1:
                chain.append(conn, [chain.Record("api_client_revoked", {"client_id": client_id}, subject=client_id)])
        return done.rowcount == 1
