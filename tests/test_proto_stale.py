"""The committed generated gRPC modules match proto/evdsearch/v1/search.proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_modules_are_current() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"stale generated modules; run `python scripts/gen_proto.py`\n{run.stdout}{run.stderr}"


def test_check_detects_a_stale_module(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_proto
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    fake_root = tmp_path / "repo"
    for proto in gen_proto.PROTOS:
        (fake_root / proto).parent.mkdir(parents=True)
        (fake_root / proto).write_bytes((ROOT / proto).read_bytes())
        for rel in gen_proto.generated_files(proto):
            (fake_root / rel).write_bytes((ROOT / rel).read_bytes())
    monkeypatch.setattr(gen_proto, "ROOT", fake_root)
    assert gen_proto.check() == 0
    stale = fake_root / gen_proto.generated_files(gen_proto.PROTOS[0])[0]
    stale.write_text(stale.read_text() + "# edited by hand\n")
    assert gen_proto.check() == 1


def test_generated_imports_are_rooted_at_the_repository() -> None:
    from evdsearch.proto.evdsearch.v1 import search_pb2, search_pb2_grpc

    assert search_pb2.DESCRIPTOR.package == "evdsearch.v1"
    assert "SearchService" in search_pb2.DESCRIPTOR.services_by_name
    assert hasattr(search_pb2_grpc, "SearchServiceStub")
