import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from mosxav.data.archive import ArchiveLimits, safe_extract
from mosxav.data.download import ManifestEntry, download, download_hf, fetch_file, read_manifest


def make_dataset_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("trainval/ImageSets/train.txt", "v00\n")
        zf.writestr("trainval/labels.json", "{}")
        zf.writestr("test/ImageSets/test.txt", "v00\n")
    return path


def manifest_for(tmp_path: Path, archive: Path, digest: str | None = None) -> Path:
    digest = digest or hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(f"files:\n  - name: {archive.name}\n    url: {archive.as_uri()}\n    sha256: '{digest}'\n")
    return manifest


def test_manifest_download_verifies_extracts_and_is_idempotent(tmp_path):
    archive = make_dataset_zip(tmp_path / "mosxav.zip")
    root = download(tmp_path / "root", str(manifest_for(tmp_path, archive)))
    assert (root / "trainval" / "ImageSets" / "train.txt").read_text() == "v00\n"
    marker = root / ".mosxav-download.json"
    stamp = marker.stat().st_mtime_ns
    archive.unlink()  # the second call needs nothing from the source
    download(root, str(tmp_path / "manifest.yaml"))
    assert marker.stat().st_mtime_ns == stamp


def test_resume_appends_to_a_partial_file(tmp_path):
    payload = os.urandom(300_000)
    source = tmp_path / "blob.bin"
    source.write_bytes(payload)
    entry = ManifestEntry("blob.bin", source.as_uri(), hashlib.sha256(payload).hexdigest())
    dest_dir = tmp_path / "dl"
    dest_dir.mkdir()
    (dest_dir / "blob.bin.part").write_bytes(payload[:123_456])
    path = fetch_file(entry, dest_dir)
    assert path.read_bytes() == payload
    assert not (dest_dir / "blob.bin.part").exists()


def test_checksum_mismatch_is_an_error_and_keeps_nothing(tmp_path):
    archive = make_dataset_zip(tmp_path / "mosxav.zip")
    manifest = manifest_for(tmp_path, archive, digest="0" * 64)
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        download(tmp_path / "root", str(manifest))
    assert not list((tmp_path / "root" / ".downloads").glob("*"))


def test_offline_without_cache_says_what_to_run(tmp_path):
    archive = make_dataset_zip(tmp_path / "mosxav.zip")
    with pytest.raises(ValueError, match="offline mode is on"):
        download(tmp_path / "root", str(manifest_for(tmp_path, archive)), offline=True)


def test_manifest_validation(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("files:\n  - name: ../evil.zip\n    url: file:///x\n    sha256: " + "a" * 64 + "\n")
    with pytest.raises(ValueError, match="plain file name"):
        read_manifest(bad)


def test_hf_source_from_a_fake_hub_cache_offline(tmp_path):
    """A Hub cache laid out as huggingface_hub writes it, read with local_files_only (no network)."""
    cache = tmp_path / "hub"
    repo = cache / "datasets--xilin-x--MOSXAV"
    commit = "a" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    make_dataset_zip(snapshot / "MOSXAV.zip")
    root = download_hf(tmp_path / "root", offline=True, cache_dir=cache)
    assert (root / "test" / "ImageSets" / "test.txt").is_file()
    with pytest.raises(ValueError, match="not in the Hugging Face cache"):
        download_hf(tmp_path / "other", repo_id="nobody/nothing", offline=True, cache_dir=cache)


# ---- hostile archives -------------------------------------------------------------------------


def outside_files(tmp_path: Path, work: Path) -> set[Path]:
    return {p for p in tmp_path.rglob("*") if work not in p.parents and p != work}


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_zip_traversal_is_refused(tmp_path, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(name, "pwned")
    before = outside_files(tmp_path, tmp_path / "work")
    with pytest.raises(ValueError, match="evil.zip"):
        safe_extract(archive, tmp_path / "work")
    assert outside_files(tmp_path, tmp_path / "work") == before
    assert not (tmp_path / "work" / "ok.txt").exists()  # nothing half-extracted


def test_zip_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("link")
    info.external_attr = 0o120777 << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        safe_extract(archive, tmp_path / "work")


def test_tar_links_and_traversal_are_refused(tmp_path):
    for kind in ("sym", "hard", "dotdot"):
        archive = tmp_path / f"{kind}.tar.gz"
        with tarfile.open(archive, "w:gz") as tf:
            member = tarfile.TarInfo("x" if kind != "dotdot" else "../x")
            if kind == "sym":
                member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
            elif kind == "hard":
                member.type, member.linkname = tarfile.LNKTYPE, "/etc/passwd"
            data = b"" if kind != "dotdot" else b"pwned"
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
        with pytest.raises(ValueError, match=kind):
            safe_extract(archive, tmp_path / "work")
    assert not (tmp_path / "x").exists()


def test_zip_bomb_is_refused_before_extraction(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * (50 * 1024**2))
    with pytest.raises(ValueError, match="zip bomb"):
        safe_extract(archive, tmp_path / "work")
    assert not any((tmp_path / "work").rglob("zeros.bin"))
    with pytest.raises(ValueError, match="members exceed"):
        safe_extract(make_dataset_zip(tmp_path / "many.zip"), tmp_path / "w2", ArchiveLimits(max_members=2))


def test_corrupt_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="broken.zip"):
        safe_extract(archive, tmp_path / "work")


def test_no_network_is_not_called_offline_mode_and_leaves_no_empty_root(tmp_path, monkeypatch):
    """Online, but the Hub cannot be reached (a local port nothing listens on): the message names the
    real failure, never 'offline mode', and the root it would have filled is not left behind empty."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    root = tmp_path / "MOSXAV"
    with pytest.raises(ValueError) as caught:
        download(root, "hf", cache_dir=tmp_path / "empty-cache", endpoint="http://127.0.0.1:9")
    message = str(caught.value)
    assert "offline mode" not in message and "could not" in message and str(root) in message
    assert not root.exists()
