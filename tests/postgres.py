"""A PostgreSQL server for tests: the one ``$MOSXAV_TEST_POSTGRES`` names, or a private cluster.

``.ci/run`` installs Debian's ``postgresql``, starts its cluster and exports
``MOSXAV_TEST_POSTGRES=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres`` (a role that may create
databases). Elsewhere the tests start a throw-away cluster of their own with the server binaries they
find (``initdb`` on the PATH or under ``/usr/lib/postgresql/*/bin``), on 127.0.0.1 and a free port,
as the ``postgres`` user when run as root (the server refuses root). Where neither is possible the
tests that need it skip, saying why. Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENT = "MOSXAV_TEST_POSTGRES"


class Unavailable(RuntimeError):
    """No PostgreSQL server can be had here (the message says why)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _binaries() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise Unavailable(f"no PostgreSQL server binaries (install Debian's postgresql, or set {ENVIRONMENT}=URL)")
    return Path(candidates[-1]).parent


@dataclass
class PrivateCluster:
    """A cluster in a temporary folder, stopped and removed by ``stop``."""

    folder: Path
    bin: Path
    port: int
    user: str | None  # run as this system user (root's tests)

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run(prefix + list(command), capture_output=True, text=True, timeout=120)

    @classmethod
    def start(cls) -> PrivateCluster:
        bin_dir = _binaries()
        user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' user to run a server as") from None
            user = "postgres"
        folder = Path(tempfile.mkdtemp(prefix="mosxav-pg-"))
        if user:
            shutil.chown(folder, user)
        cluster = cls(folder, bin_dir, _free_port(), user)
        data = str(folder / "data")
        made = cluster._run(str(bin_dir / "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        if made.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise Unavailable(f"initdb failed: {made.stderr.strip()[-500:]}")
        options = f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        started = cluster._run(
            str(bin_dir / "pg_ctl"), "-D", data, "-o", options, "-l", str(folder / "log"), "-w", "-t", "60", "start"
        )
        if started.returncode != 0:
            log = (folder / "log").read_text() if (folder / "log").exists() else started.stderr
            shutil.rmtree(folder, ignore_errors=True)
            raise Unavailable(f"the PostgreSQL server did not start: {log.strip()[-500:]}")
        return cluster

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresServer:
    """Makes and drops test databases on one server (``admin_url`` may create databases)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        try:
            with self._admin() as connection:
                connection.execute("SELECT 1")
        except Exception as exc:
            raise Unavailable(f"cannot connect to {admin_url.split('@')[-1]}: {exc}") from exc

    @contextmanager
    def _admin(self) -> Iterator:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as connection:
            yield connection

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = f"mosxav_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def drop_database(self, url: str) -> None:
        name = url.rpartition("/")[2]
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_server() -> tuple[PostgresServer, PrivateCluster | None]:
    """The server of ``$MOSXAV_TEST_POSTGRES``, else a private cluster; raises ``Unavailable``."""
    configured = os.environ.get(ENVIRONMENT)
    if configured:
        return PostgresServer(configured), None
    cluster = PrivateCluster.start()
    try:
        return PostgresServer(cluster.url), cluster
    except Unavailable:
        cluster.stop()
        raise
