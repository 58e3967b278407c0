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
    return SynthConfig(sequences=4, frames=11, size=64, seed=3, test_sequences=2)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory, tiny_config: SynthConfig) -> Path:
    """A read-only-by-convention tiny dataset; copy it (``tiny_copy``) before modifying."""
    return generate_dataset(tmp_path_factory.mktemp("synth") / "tiny", tiny_config)


@pytest.fixture
def tiny_copy(tiny_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_root, tmp_path / "copy"))


@pytest.fixture(scope="module")
def server(tiny_root, tmp_path_factory):
    """A live leaderboard service over the tiny dataset, one per test module (needs the [serve] extra)."""
    pytest.importorskip("fastapi")
    from live_server import start_server

    running = start_server(tmp_path_factory.mktemp("serve"), tiny_root)
    yield running
    running.stop()
    assert running.process.returncode == 0, running.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def perfect_zip(tiny_root, tmp_path_factory) -> Path:
    """A perfect test-split submission of the tiny dataset, zipped."""
    pytest.importorskip("httpx")
    from test_leaderboard import make_submission

    from mosxav_leaderboard.service import client

    folder = make_submission(tiny_root, tmp_path_factory.mktemp("perfect") / "sub")
    return client.zip_folder(folder, folder.parent / "perfect.zip")
