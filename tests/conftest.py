"""Shared fixtures: a tiny synthetic MOSXAV root, the real data in ../shared when present (the
fixtures skip the test cleanly where it is absent, as in a user's clone), and a live leaderboard
service over the tiny root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mosxav.data.synth import SynthConfig, generate_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"../shared/data/{name} not present")
    return path


@pytest.fixture(scope="session")
def annotations_root() -> Path:
    """The real MOSXAV instance masks, reference predictions and official scores (CC BY-NC-SA 4.0)."""
    return _shared("mosxav-annotations")


@pytest.fixture(scope="session")
def xca_root() -> Path:
    """The 40 real XCA coronary angiograms with vessel masks (BSD-3)."""
    return _shared("xca-coronary-cimat-80")


@pytest.fixture(scope="session")
def tiny_config() -> SynthConfig:
    return SynthConfig(sequences=4, frames=11, size=64, seed=3, test_sequences=6)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory, tiny_config: SynthConfig) -> Path:
    """A read-only-by-convention tiny dataset; copy it (``tiny_copy``) before modifying."""
    return generate_dataset(tmp_path_factory.mktemp("synth") / "tiny", tiny_config)


@pytest.fixture
def tiny_copy(tiny_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_root, tmp_path / "copy"))


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server tests may make databases on (``tests/postgres.py``); skips, saying why, where
    none can be had."""
    pytest.importorskip("psycopg")
    from postgres import Unavailable, open_server

    from mosxav_leaderboard.engine import dispose_engines

    try:
        made, cluster = open_server()
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL: {exc}")
    yield made
    dispose_engines()
    if cluster is not None:
        cluster.stop()


@pytest.fixture
def database_url(request, tmp_path):
    """``database_url(backend)``: a fresh leaderboard database, a SQLite file under ``tmp_path`` or a new
    PostgreSQL database (dropped after the test)."""
    from mosxav_leaderboard.engine import dispose_engines

    made: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return str(tmp_path / f"leaderboard-{len(made)}.sqlite")
        url = request.getfixturevalue("postgres_server").new_database()
        made.append(url)
        return url

    yield make
    if made:
        dispose_engines()
        for url in made:
            request.getfixturevalue("postgres_server").drop_database(url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tiny_root, tmp_path_factory):
    """A live leaderboard service over the tiny dataset, one per test module and database backend
    (needs the [serve] extra; the PostgreSQL one skips where no server can be had)."""
    pytest.importorskip("fastapi")
    from live_server import start_server

    db = request.getfixturevalue("postgres_server").new_database() if request.param == "postgresql" else None
    running = start_server(tmp_path_factory.mktemp("serve"), tiny_root, db=db)
    yield running
    running.stop()
    assert running.process.returncode == 0, running.log.read_text()[-3000:]
    if db is not None:
        from mosxav_leaderboard.engine import dispose_engines

        dispose_engines()
        request.getfixturevalue("postgres_server").drop_database(db)


@pytest.fixture(scope="module")
def perfect_zip(tiny_root, tmp_path_factory) -> Path:
    """A perfect test-split submission of the tiny dataset, zipped."""
    pytest.importorskip("httpx")
    from test_leaderboard import make_submission

    from mosxav_leaderboard.service import client

    folder = make_submission(tiny_root, tmp_path_factory.mktemp("perfect") / "sub")
    return client.zip_folder(folder, folder.parent / "perfect.zip")
