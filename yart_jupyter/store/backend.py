"""Where a store's rows live: a SQLite file (the local store) or a PostgreSQL database (a team's store).

Both speak the same SQL through one small interface (``?`` placeholders, rows readable by name
and by position), so every query of the store is written once. Each unit of work opens a
connection or takes one from a small pool, and gives it back at its end.
"""

from __future__ import annotations

import queue
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ..core.redact import register_secret

#: PostgreSQL errors no retry mends (a wrong database, role or password), by SQLSTATE and as libpq words them.
PERMANENT = {"3D000", "28000", "28P01", "42501"}
PERMANENT_TEXT = ("does not exist", "authentication failed", "no password supplied", "no pg_hba.conf entry")

#: Schemes that name a team store (a PostgreSQL database) rather than a local folder.
POSTGRES_SCHEMES = ("postgresql", "postgres")


class Cursor(Protocol):
    """What a statement gives back: its rows and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """A connection in one unit of work: statements with ``?`` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...


def is_team_location(location: str | Path) -> bool:
    """True when a store location is a PostgreSQL URL (a team's store)."""
    return urlsplit(str(location)).scheme in POSTGRES_SCHEMES


def redacted_url(url: str) -> str:
    """A database URL without its password (what outputs, errors and reprs show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{user}{host}", parts.path, parts.query, parts.fragment))


class SQLiteBackend:
    """A SQLite file: short connections, write transactions taken at once (``BEGIN IMMEDIATE``)."""

    name = "sqlite"
    #: The driver's errors: one that :meth:`is_transient` accepts is retried, any other said in one line.
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        self.path = path

    def is_transient(self, exc: BaseException) -> bool:
        """Another process holds the file: worth another try."""
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))

    @contextmanager
    def connect(self) -> Iterator[Conn]:
        """A connection for one unit of work, always closed at its end (no thread keeps one)."""
        db = sqlite3.connect(self.path, timeout=15.0, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        """Nothing is kept open between units of work."""


class Row(tuple):  # type: ignore[type-arg]
    """A PostgreSQL row read by position or by column name, like :class:`sqlite3.Row`."""

    names: dict[str, int]

    def __new__(cls, names: dict[str, int], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


def _pg_sql(sql: str) -> str:
    """The store's SQL for psycopg: ``%`` doubled, ``?`` placeholders as ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgConn:
    """A psycopg connection behind the store's :class:`Conn` interface."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> Cursor:
        return self.raw.execute(_pg_sql(sql), tuple(args))  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any:
        with self.raw.cursor() as cursor:
            cursor.executemany(_pg_sql(sql), [tuple(r) for r in rows])


class PostgresBackend:
    """A PostgreSQL database (psycopg 3): a small pool of connections, each unit of work one transaction.

    The password (from the URL, ``PGPASSWORD`` or ``~/.pgpass``, as libpq reads them) is registered
    as a secret, so it is masked wherever text leaves the package.
    """

    name = "postgresql"
    POOL = 4

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        try:
            import psycopg
        except ImportError:
            from ..core.errors import ConfigurationError

            raise ConfigurationError("A team store needs the PostgreSQL driver: pip install 'yart_jupyter[team]'") \
                from None
        self.psycopg = psycopg
        self.url = url
        self.shown = redacted_url(url)
        register_secret(urlsplit(url).password)
        self.connect_timeout = connect_timeout
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()

    def is_transient(self, exc: BaseException) -> bool:
        """The server went away, restarts or refuses for a moment: worth another try on a new connection.
        A wrong database, user or password is not: it is said at once."""
        if not isinstance(exc, self.psycopg.OperationalError):
            return False
        text = str(exc)
        return getattr(exc, "sqlstate", None) not in PERMANENT and not any(p in text for p in PERMANENT_TEXT)

    def _open(self) -> Any:
        def row_factory(cursor: Any) -> Any:
            names = {column.name: index for index, column in enumerate(cursor.description or ())}
            return lambda values: Row(names, values)

        return self.psycopg.connect(self.url, connect_timeout=max(1, int(self.connect_timeout)),
                                    row_factory=row_factory, application_name="yart_jupyter")

    @contextmanager
    def connect(self) -> Iterator[Conn]:
        """A pooled connection in autocommit mode (each statement its own transaction)."""
        with self._borrow(autocommit=True) as raw:
            yield _PgConn(raw)

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        with self._borrow(autocommit=False) as raw, raw.transaction():
            yield _PgConn(raw)

    @contextmanager
    def _borrow(self, *, autocommit: bool) -> Iterator[Any]:
        try:
            raw = self._idle.get_nowait()
        except queue.Empty:
            raw = self._open()
        healthy = False
        try:
            raw.autocommit = autocommit
            yield raw
            healthy = True
        finally:
            if healthy and not raw.closed and self._idle.qsize() < self.POOL:
                self._idle.put(raw)
            else:
                raw.close()

    def close(self) -> None:
        """Close the pooled connections."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
