"""Fetching MOSXAV: from the Hugging Face Hub or from plain URLs with a SHA-256 manifest.

* ``source="hf"``: ``huggingface_hub.snapshot_download`` of the dataset repo (``xilin-x/MOSXAV``,
  ``repo_type="dataset"``), offline from the Hub cache when ``offline=True``.
* ``source=<manifest>``: a YAML/JSON manifest of ``{name, url, sha256, size}`` files (any mirror, or
  ``file://`` URLs). Partial downloads resume (HTTP Range; sources that ignore it are skipped ahead),
  every file is verified before use, and a finished download is recorded so a second call is a no-op.

Archives are extracted with ``mosxav.data.archive.safe_extract`` (no traversal, no links, bomb limits).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosxav.data.archive import safe_extract
from mosxav.data.files import read_json, read_yaml, write_json
from mosxav.errors import DataError

HF_REPO_ID = "xilin-x/MOSXAV"
DONE_MARKER = ".mosxav-download.json"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
CHUNK = 1 << 20


def cache_home() -> Path:
    """Where named datasets live: ``$MOSXAV_HOME`` or ``~/.cache/mosxav-bench``."""
    return Path(os.environ.get("MOSXAV_HOME", Path.home() / ".cache" / "mosxav-bench"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    url: str
    sha256: str
    size: int | None = None


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Parse a manifest (``files:`` list); names must be plain file names, hashes 64 hex digits."""
    path = Path(path)
    data = read_yaml(path, "manifest")
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not files:
        raise DataError(path, "a manifest needs a non-empty 'files' list")
    entries = []
    for i, item in enumerate(files):
        if not isinstance(item, dict) or not {"name", "url", "sha256"} <= set(item):
            raise DataError(path, f"files[{i}] needs name, url and sha256")
        name, digest = str(item["name"]), str(item["sha256"]).lower()
        if Path(name).name != name or name in ("", ".", ".."):
            raise DataError(path, f"files[{i}].name {name!r} must be a plain file name")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise DataError(path, f"files[{i}].sha256 is not a SHA-256 hex digest")
        entries.append(ManifestEntry(name, str(item["url"]), digest, item.get("size")))
    return entries


def fetch_file(entry: ManifestEntry, dest_dir: Path, *, offline: bool = False, timeout: float = 60.0) -> Path:
    """Download one manifest file into ``dest_dir`` with resume and verification; return its path."""
    dest = dest_dir / entry.name
    if dest.is_file() and sha256_file(dest) == entry.sha256:
        return dest
    if offline:
        raise DataError(dest, "not in the cache and offline mode is on (run `mosxav-bench download` online first)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(entry.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = getattr(response, "status", None) or response.getcode()
            if have and status != 206:
                # The source ignored the Range header (file:// or a plain server): skip what we have.
                skipped = 0
                while skipped < have:
                    chunk = response.read(min(CHUNK, have - skipped))
                    if not chunk:
                        break
                    skipped += len(chunk)
            with open(part, "ab") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(dest, f"download from {entry.url} failed ({exc}); run the command again to resume") from None
    digest = sha256_file(part)
    if digest != entry.sha256:
        part.unlink()
        raise DataError(dest, f"SHA-256 mismatch (expected {entry.sha256}, got {digest}); the partial file was removed")
    os.replace(part, dest)
    return dest


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _install(files: list[Path], root: Path) -> None:
    """Extract archives into ``root``; copy dataset folders (``trainval/``, ``test/``) that came unpacked."""
    for path in files:
        if path.is_file() and _is_archive(path):
            safe_extract(path, root)
        elif path.is_dir():
            shutil.copytree(path, root / path.name, dirs_exist_ok=True)


def download_manifest(root: Path, manifest: str | Path, *, offline: bool = False) -> Path:
    entries = read_manifest(manifest)
    digest = hashlib.sha256(Path(manifest).read_bytes()).hexdigest()
    marker = root / DONE_MARKER
    if marker.is_file() and read_json(marker).get("manifest_sha256") == digest:
        return root
    downloads = root / ".downloads"
    files = [fetch_file(entry, downloads, offline=offline) for entry in entries]
    _install(files, root)
    write_json(marker, {"source": str(manifest), "manifest_sha256": digest, "files": [e.name for e in entries]})
    return root


def download_hf(
    root: Path,
    repo_id: str = HF_REPO_ID,
    *,
    revision: str | None = None,
    offline: bool = False,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
) -> Path:
    """Snapshot the Hub dataset repo (or read it from the Hub cache when offline) and install it."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    marker = root / DONE_MARKER
    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=offline,
                endpoint=endpoint,
            )
        )
    except LocalEntryNotFoundError as exc:
        if offline:
            raise DataError(
                root,
                f"{repo_id} is not in the Hugging Face cache and offline mode is on; "
                f"run `mosxav-bench download {root}` online first",
            ) from None
        cause = exc.__cause__ or exc.__context__ or exc  # the Hub raises this when the network fails too
        raise DataError(
            root, f"could not reach the Hugging Face Hub for {repo_id}, and it is not cached ({_first_line(cause)})"
        ) from None
    except Exception as exc:  # network and Hub errors come in many classes
        raise DataError(root, f"could not fetch {repo_id} from the Hugging Face Hub ({_first_line(exc)})") from None
    if marker.is_file() and read_json(marker).get("snapshot") == snapshot.name:
        return root
    root.mkdir(parents=True, exist_ok=True)
    _install(sorted(snapshot.iterdir()), root)
    write_json(marker, {"source": f"hf://{repo_id}", "snapshot": snapshot.name})
    return root


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:300]}" if text else exc.__class__.__name__


def download(root: str | Path, source: str = "hf", *, offline: bool = False, **kwargs: Any) -> Path:
    """Make ``root`` a complete MOSXAV root. ``source`` is ``"hf"`` or the path of a manifest. A failed
    download leaves no empty ``root`` behind (one it did not find there)."""
    root = Path(root)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        if source == "hf":
            return download_hf(root, offline=offline, **kwargs)
        return download_manifest(root, source, offline=offline)
    except BaseException:
        if created and root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        raise
