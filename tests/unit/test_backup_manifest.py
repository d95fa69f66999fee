"""A backup is read only whole: every file its manifest lists, with its size and SHA-256 (no stack here;
the restore itself is exercised by tests/e2e/test_restore_drill.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from spendsense_cli.backup import FORMAT, BackupError, read_backup


def write_backup(root: Path) -> Path:
    (root / "postgres").mkdir(parents=True)
    (root / "buckets" / "data").mkdir(parents=True)
    files = {"postgres/auth.dump": b"PGDMP schema auth", "buckets/data/0": b"an uploaded file"}
    for name, body in files.items():
        (root / name).write_bytes(body)

    def record(name: str) -> dict[str, object]:
        body = files[name]
        return {"file": name, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    manifest = {
        "format": FORMAT,
        "created_at": "2026-11-29T20:00:00+00:00",
        "env": "local",
        "database": {"schemas": {"auth": {"tables": {"users": 3}, **record("postgres/auth.dump")}}},
        "buckets": {
            "data": {"name": "spendsense-data-local", "objects": [{"key": "u/1", **record("buckets/data/0")}]}
        },
        "bytes": 33,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_a_whole_backup_is_read(tmp_path: Path) -> None:
    manifest = read_backup(write_backup(tmp_path))
    assert manifest["database"]["schemas"]["auth"]["tables"] == {"users": 3}


@pytest.mark.parametrize("damage", ["truncated", "altered", "missing"])
def test_a_damaged_file_is_refused_before_anything_is_restored(tmp_path: Path, damage: str) -> None:
    root = write_backup(tmp_path)
    dump = root / "postgres" / "auth.dump"
    if damage == "truncated":
        dump.write_bytes(dump.read_bytes()[:-1])
    elif damage == "altered":
        dump.write_bytes(dump.read_bytes().replace(b"auth", b"AUTH"))
    else:
        dump.unlink()
    with pytest.raises(BackupError, match=r"auth\.dump is missing or does not match its checksum"):
        read_backup(root)


def test_a_directory_without_its_manifest_is_not_a_backup(tmp_path: Path) -> None:
    root = write_backup(tmp_path)
    (root / "manifest.json").unlink()
    with pytest.raises(BackupError, match="not a complete backup"):
        read_backup(root)


def test_another_format_is_refused(tmp_path: Path) -> None:
    root = write_backup(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "format": FORMAT + 1}))
    with pytest.raises(BackupError, match="backup format"):
        read_backup(root)
