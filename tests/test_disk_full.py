"""A full disk under `index --force`, `index add`, `kb import` and `kb calibrate`: a real size-limited tmpfs is
filled with a ballast file, each run exits non-zero with one line, the previous version verifies and serves,
and the next successful write leaves no leftovers. EIO is injected (no device here fails on demand)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_engine_support import open_engine, write_noise_images

from evdsearch import cli, versioned
from evdsearch.search_api import SearchRequest
from evdsearch.versioned import current_version, version_ids

DISK_MB = 48  # the tmpfs; the tiny index and KB take well under 1 MiB
LEAVE = 4096  # bytes the ballast leaves free: one page, less than any new version


@pytest.fixture()
def disk(tmp_path: Path) -> Path:
    """A tmpfs of DISK_MB MiB mounted for this test (root, or skipped)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True) if os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (" + (done.stderr.strip() if done else "not root") + ")")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = LEAVE) -> Path:
    """A ballast file that leaves `leave` bytes free on `disk`."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, max(0, shutil.disk_usage(disk).free - leave))
    return ballast


def leftovers(folder: Path) -> list[str]:
    """Anything in a versioned folder that is not its lock, links, or current and previous version."""
    found = [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.endswith(".staging")]
    found += [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]  # build staging
    found += [n for n in os.listdir(folder / "versions") if n not in version_ids(folder)]
    if len(version_ids(folder)) > 2:
        found.append(f"{len(version_ids(folder))} versions")
    return found


def run_full(argv: list[str], folder: Path, disk: Path, capsys: pytest.CaptureFixture[str], leave: int) -> str:
    """Run `argv` on a full disk: exit 2 with one line, the folder unchanged and verified; returns that line."""
    before = current_version(folder)
    ballast = fill(disk, leave)
    code = cli.main(argv)
    err = capsys.readouterr().err
    ballast.unlink()
    assert code == 2 and err.count("\n") == 1 and err.startswith("evdsearch: error: "), (code, err)
    assert current_version(folder) == before
    assert not [n for n in os.listdir(folder / "versions") if n.endswith(".partial")]
    assert cli.main(["verify", str(folder)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return err.strip()


def test_a_full_disk_stops_every_writer_cleanly(disk: Path, tmp_path: Path, tiny_clip_dir: Path,
                                                tiny_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index, kb = disk / "index", disk / "kb"
    small, large, extra = (write_noise_images(tmp_path / name, n, seed, f"{seed}-") for name, n, seed in
                           (("small", 6, 0), ("large", 40, 1), ("extra", 30, 2)))
    build = ["--model", str(tiny_clip_dir), "--device", "cpu", "--workers", "1", "--no-progress"]
    calibrate = ["kb", "calibrate", "--kb", str(kb), "--data", str(tiny_world), "--model", str(tiny_clip_dir),
                 "--device", "cpu", "--max-captions", "5", "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(["index", str(small), "--out", str(index), *build]) == 0
    assert cli.main(["kb", "import", str(tiny_world / "encyclopedia.jsonl"), "--kb", str(kb)]) == 0
    capsys.readouterr()
    runs = {  # name: (argv, folder, bytes left free)
        "index --force (embedding)": (["index", str(large), "--out", str(index), "--force", *build], index, LEAVE),
        # room for the staged shards (~30 KiB), not for the version (~70 KiB): FAISS and embeddings.npy fail
        "index --force (publishing)": (["index", str(large), "--out", str(index), "--force", *build], index,
                                       48 << 10),
        "index add": (["index", "add", str(extra), "--out", str(index), "--device", "cpu", "--workers", "1",
                       "--no-progress"], index, LEAVE),
        "kb import": (["kb", "import", str(tiny_world / "encyclopedia.jsonl"), "--kb", str(kb)], kb, LEAVE),
        "kb calibrate": (calibrate, kb, LEAVE),
    }
    lines = {}
    for name, (argv, folder, leave) in runs.items():
        lines[name] = run_full(argv, folder, disk, capsys, leave)
        assert "no space left on device while writing" in lines[name] and str(folder) in lines[name]
        assert "free" in lines[name] and "run it again" in lines[name]
    for name, line in lines.items():
        print(f"{name}: {line}")
    assert "for --resume" in lines["index --force (embedding)"]
    for name in ("index --force (publishing)", "index add", "kb import", "kb calibrate"):
        assert "/versions/v000002.partial/" in lines[name] and "v000001 is still current" in lines[name], name
    with open_engine(index, kb) as engine:  # the previous versions still serve
        assert len(engine.search(SearchRequest(text="a red circle", k=3)).hits) == 3
    for name, (argv, folder, _leave) in runs.items():  # space again: each write succeeds and sweeps what was left
        assert cli.main(argv) == 0, capsys.readouterr().err
        assert leftovers(folder) == [], (name, leftovers(folder))
    assert cli.main(["verify", str(index)]) == 0 and cli.main(["verify", str(kb)]) == 0


def test_an_io_error_while_publishing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    kb = tmp_path / "kb"
    source = tmp_path / "e.jsonl"
    source.write_text('{"entity": "tomato", "description": "red", "source": "s", "score": 1}\n')
    assert cli.main(["kb", "import", str(source), "--kb", str(kb)]) == 0
    before = current_version(kb)

    def failing_fsync(root: Path) -> None:  # injected: what a failing disk answers to fsync
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(root / "data.mdb"))

    monkeypatch.setattr(versioned, "fsync_tree", failing_fsync)
    source.write_text('{"entity": "bus", "description": "yellow", "source": "s", "score": 1}\n')
    capsys.readouterr()
    assert cli.main(["kb", "import", str(source), "--kb", str(kb)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "I/O error" in err and "check the disk" in err and "v000001 is still current" in err
    assert current_version(kb) == before and os.listdir(kb / "versions") == ["v000001"]


def test_faiss_writes_report_enospc_with_the_file_name() -> None:
    """faiss' own writer only says 'write error'; through a Python file the errno and path survive."""
    from evdsearch.indexer import faiss_backend

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    index = faiss_backend.build(np.eye(8, dtype=np.float32), "Flat")
    with pytest.raises(OSError) as err:
        faiss_backend.write(index, Path("/dev/full"))
    assert err.value.errno == errno.ENOSPC and err.value.filename == "/dev/full"
