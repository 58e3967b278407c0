"""Shared fixtures: a tiny synthetic MOSXAV root, and the real data in ../shared when present."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mosxav.synth import SynthConfig, generate_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ANNOTATIONS = SHARED / "mosxav-annotations"
XCA = SHARED / "xca-coronary-cimat-80"

needs_annotations = pytest.mark.skipif(not ANNOTATIONS.is_dir(), reason="../shared/data/mosxav-annotations not present")
needs_xca = pytest.mark.skipif(not XCA.is_dir(), reason="../shared/data/xca-coronary-cimat-80 not present")

TINY = SynthConfig(sequences=4, frames=11, size=64, seed=3, test_sequences=2)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention tiny dataset; copy it (``tiny_copy``) before modifying."""
    return generate_dataset(tmp_path_factory.mktemp("synth") / "tiny", TINY)


@pytest.fixture
def tiny_copy(tiny_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_root, tmp_path / "copy"))
