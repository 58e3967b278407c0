"""Where a named dataset lives on this machine: MOSXAV downloaded into the cache, the synthetic MOSXAV
generated there (again when the generator's default changes), EndoScapes2023 where the user put it.

Kept apart from the Hugging Face integration so that training and the harness resolve data without
importing ``datasets``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

from mosxav.data.download import cache_home, download
from mosxav.data.files import read_json
from mosxav.data.layout import MosxavLayout
from mosxav.data.synth.writer import SynthConfig
from mosxav.errors import DataError

NAMED = ("mosxav", "mosxav-synthetic", "endoscapes2023")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or os.environ.get(
        "MOSXAV_OFFLINE", "0"
    ) not in ("0", "")


def synthetic_root(config: SynthConfig, path: Path | None = None) -> Path:
    """The synthetic MOSXAV of ``config`` in the cache (``mosxav-synthetic-<settings hash>`` unless
    ``path`` is given), generated when missing or made by another generator version. Cells of a study
    start side by side in separate processes: a file lock lets one of them generate it, once."""
    from mosxav.data.synth import generate_dataset
    from mosxav.data.synth.writer import synth_stamp

    wanted = synth_stamp(config)
    if path is None:
        digest = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:10]
        path = cache_home() / f"mosxav-synthetic-{digest}"
    stamp = path / "synth_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and read_json(stamp) == wanted:
            return path
        return generate_dataset(path, config, overwrite=True)  # missing, or made by another generator


def resolve_root(name: str, root: str | Path | None = None, *, offline: bool | None = None) -> Path:
    """The local MOSXAV root for a dataset name or path, fetching or generating it when missing."""
    if name not in NAMED:
        return Path(name)
    offline = _offline() if offline is None else offline
    if name == "endoscapes2023":
        path = Path(root) if root else cache_home() / "endoscapes2023"
        if not path.is_dir():
            raise DataError(
                path, "EndoScapes2023 is distributed after registration: download it yourself and pass root=<folder>"
            )
        return path
    if root is not None:
        return Path(root)
    path = cache_home() / name
    if name == "mosxav-synthetic":
        from mosxav.data.synth.defaults import DEFAULT_SYNTH

        return synthetic_root(DEFAULT_SYNTH, path)
    if path.is_dir() and MosxavLayout(path).has_split("train"):
        return path
    if offline:
        raise DataError(
            path,
            "MOSXAV is not in the cache and offline mode is on: run `mosxav-bench download "
            f"{path}` with network access, or pass root=<an existing MOSXAV folder>",
        )
    return download(path)
