"""Opening the leaderboard database: a SQLite file (the embedded default) or a PostgreSQL server.

``--db`` takes either a path (``runs/lb.sqlite``) or a URL (``postgresql://user:pass@host/db``);
``open_engine`` makes one engine per URL and process and brings its schema to the head migration
(Alembic, ``mosxav_leaderboard/migrations``) before anything reads it.

What each backend needs for the guarantees the store and the service rely on:

* SQLite: WAL with ``synchronous=FULL`` (a killed process leaves a whole transaction or nothing),
  foreign keys on, a 60 s busy timeout, and write transactions opened ``BEGIN IMMEDIATE`` so that
  concurrent writers serialise at their start (the daily limit's count-then-insert is one
  transaction). The driver's own transaction handling is switched off so that SQLAlchemy's BEGIN is
  the one SQLite sees (SQLAlchemy's documented recipe for pysqlite).
* PostgreSQL (psycopg 3): READ COMMITTED; the statements that must serialise lock the rows they
  decide on (a team row for its daily limit, ``FOR UPDATE SKIP LOCKED`` to claim jobs).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

#: The execution option naming how SQLite begins a transaction (``IMMEDIATE`` for writers).
BEGIN_OPTION = "mosxav_begin"
MIGRATIONS = Path(__file__).with_name("migrations")
_ENGINES: dict[tuple[str, int], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def database_url(db: str | Path) -> str:
    """The SQLAlchemy URL for ``--db``: a path is a SQLite file (absolute), ``postgresql://`` uses psycopg 3."""
    value = str(db)
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    url = make_url(value)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"--db {url.render_as_string(hide_password=True)}: only SQLite and PostgreSQL are supported")
    return url.render_as_string(hide_password=False)


def sqlite_file(db: str | Path) -> Path | None:
    """The file of a SQLite database (``--db`` as given, or its URL), or None for a database server."""
    parsed = make_url(database_url(db))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def shown(db: str | Path) -> str:
    """The database's URL with its password masked (for messages and logs)."""
    return make_url(database_url(db)).render_as_string(hide_password=True)


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # A connection per concurrent thread, as many as there are (a SQLite connection is a file handle);
    # 32 stay open, since opening one and setting its pragmas costs more than the statements a request runs.
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=32, max_overflow=-1)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below is the only one
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _server_engine(url: str) -> Engine:
    return create_engine(url, pool_size=8, max_overflow=16, pool_recycle=3600)


def open_engine(db: str | Path) -> Engine:
    """This process's engine for ``db``, its schema migrated to the head revision (made once per process:
    an engine made before a fork is never used after it)."""
    url = database_url(db)
    key = (url, os.getpid())
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _sqlite_engine(url) if url.startswith("sqlite") else _server_engine(url)
            migrate(engine)
            _ENGINES[key] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection of this process (tests that remove a database; server shutdown)."""
    with _ENGINES_LOCK:
        for (_, pid), engine in list(_ENGINES.items()):
            if pid == os.getpid():
                engine.dispose()
        _ENGINES.clear()


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration's id (read from the scripts once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Upgrade the database to the head migration, in one transaction.

    Cheap when nothing is to do (one query). Concurrent starts serialise: SQLite's write lock, a
    PostgreSQL advisory lock. A database made before the migrations existed (a SQLite file of commit
    2fd3a37 or earlier) is adopted by the first migration, which creates only what is missing.
    """
    with engine.connect() as connection:
        if current_revision(connection) == head_revision():
            return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect().execution_options(**{BEGIN_OPTION: "IMMEDIATE"}) as connection:
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(74617625)"))  # any fixed key
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


__all__ = [
    "BEGIN_OPTION",
    "current_revision",
    "database_url",
    "dispose_engines",
    "head_revision",
    "migrate",
    "open_engine",
    "shown",
    "sqlite_file",
]


def quiet_logging() -> None:
    """The service's log: its own lines at INFO, plain; Alembic's chatter (a "setup plugin" line per
    plugin at every start) only from WARNING up."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
