"""Where a named dataset lives on this machine: MOSXAV downloaded into the cache, the synthetic MOSXAV
generated there (again when the generator's default changes), EndoScapes2023 where the user put it.

Kept apart from the Hugging Face integration so that training and the harness resolve data without
importing ``datasets``.
"""

from __future__ import annotations

import os
from pathlib import Path

from mosxav.data.download import cache_home, download
from mosxav.data.files import read_json
from mosxav.data.layout import MosxavLayout
from mosxav.errors import DataError

NAMED = ("mosxav", "mosxav-synthetic", "endoscapes2023")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or os.environ.get(
        "MOSXAV_OFFLINE", "0"
    ) not in ("0", "")


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
        from mosxav.data.synth import generate_dataset
        from mosxav.data.synth.defaults import DEFAULT_SYNTH
        from mosxav.data.synth.writer import synth_stamp

        stamp = path / "synth_config.json"
        if stamp.is_file() and read_json(stamp) == synth_stamp(DEFAULT_SYNTH):
            return path
        return generate_dataset(path, DEFAULT_SYNTH, overwrite=True)  # missing, or made by another default or generator
    if path.is_dir() and MosxavLayout(path).has_split("train"):
        return path
    if offline:
        raise DataError(
            path,
            "MOSXAV is not in the cache and offline mode is on: run `mosxav-bench download "
            f"{path}` with network access, or pass root=<an existing MOSXAV folder>",
        )
    return download(path)
