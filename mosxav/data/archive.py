"""Safe extraction of zip and tar archives: every member is vetted before anything is written.

Refused: absolute paths, ``..`` components, links of any kind, device files, and archives whose
declared total size, member count or compression ratio exceed the limits (zip bombs). Extraction
goes to a staging folder that is renamed into place only when every member was written.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mosxav.errors import DataError


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 20 * 1024**3
    max_members: int = 200_000
    max_ratio: float = 200.0  # uncompressed / compressed, per zip member and overall


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(archive, f"member {name!r} has an absolute path")
    if ".." in path.parts:
        raise DataError(archive, f"member {name!r} escapes the target folder ('..')")
    if len(name.encode()) > 1024 or any(len(part.encode()) > 255 for part in path.parts):
        raise DataError(archive, f"member name {name[:60]!r}... is too long (255 bytes a component, 1,024 in all)")
    return path


def _vet_zip(archive: Path, zf: zipfile.ZipFile, limits: ArchiveLimits) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise DataError(archive, f"{len(infos)} members exceed the limit of {limits.max_members}")
    total = compressed = 0
    for info in infos:
        _safe_name(archive, info.filename)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            raise DataError(archive, f"member {info.filename!r} is a symbolic link")
        if mode and mode not in (0o100000, 0o040000):
            raise DataError(archive, f"member {info.filename!r} is not a regular file or folder")
        total += info.file_size
        compressed += info.compress_size
        if info.file_size > 1024**2 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise DataError(
                archive,
                f"member {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}x (zip bomb?)",
            )
    if total > limits.max_total_bytes:
        raise DataError(archive, f"uncompressed size {total} bytes exceeds the limit of {limits.max_total_bytes}")
    if total > 1024**2 and total > limits.max_ratio * max(compressed, 1):
        raise DataError(archive, f"archive expands {total / max(compressed, 1):.0f}x (zip bomb?)")


def vet_zip(archive: str | Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """Check a zip's member names, kinds, sizes and ratios without extracting anything (DataError)."""
    archive = Path(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            _vet_zip(archive, zf, limits)
    except zipfile.BadZipFile as exc:
        raise DataError(archive, f"corrupt zip archive ({exc})") from None


def _vet_tar(archive: Path, tf: tarfile.TarFile, limits: ArchiveLimits) -> list[tarfile.TarInfo]:
    members = []
    total = 0
    for member in tf:
        members.append(member)
        if len(members) > limits.max_members:
            raise DataError(archive, f"more than {limits.max_members} members")
        _safe_name(archive, member.name)
        if member.issym() or member.islnk():
            raise DataError(archive, f"member {member.name!r} is a link")
        if not (member.isfile() or member.isdir()):
            raise DataError(archive, f"member {member.name!r} is not a regular file or folder")
        total += member.size
        if total > limits.max_total_bytes:
            raise DataError(archive, f"uncompressed size exceeds the limit of {limits.max_total_bytes} bytes")
    compressed = archive.stat().st_size
    if total > 1024**2 and total > limits.max_ratio * max(compressed, 1):
        raise DataError(archive, f"archive expands {total / max(compressed, 1):.0f}x (tar bomb?)")
    return members


def _copy_limited(src, dst_path: Path, budget: int, archive: Path, name: str) -> int:
    """Copy a member stream, stopping if it yields more than declared (lying headers)."""
    written = 0
    with open(dst_path, "wb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > budget:
                raise DataError(archive, f"member {name!r} is larger than its header declares")
            dst.write(chunk)
    return written


def safe_extract(archive: str | Path, target: str | Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Extract ``archive`` (zip, tar, tar.gz, ...) into ``target``, merging with what is there."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _vet_zip(archive, zf, limits)
                for info in zf.infolist():
                    dest = staging / _safe_name(archive, info.filename)
                    if info.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src:
                        _copy_limited(src, dest, info.file_size, archive, info.filename)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in _vet_tar(archive, tf, limits):
                    dest = staging / _safe_name(archive, member.name)
                    if member.isdir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(member)
                    if src is None:
                        raise DataError(archive, f"member {member.name!r} has no data")
                    with src:
                        _copy_limited(src, dest, member.size, archive, member.name)
        else:
            raise DataError(archive, "not a zip or tar archive")
        for item in staging.iterdir():
            final = target / item.name
            if final.is_dir() and item.is_dir():
                shutil.copytree(item, final, dirs_exist_ok=True)
            else:
                if final.exists():
                    shutil.rmtree(final) if final.is_dir() else final.unlink()
                os.replace(item, final)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise DataError(archive, f"corrupt archive ({exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
