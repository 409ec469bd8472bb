"""Regenerate the committed gRPC Python modules from proto/*.proto; `--check` fails when they are stale.

Run from anywhere: `python scripts/gen_proto.py [--check]`. proto/ installs as `evdsearch.proto`, so protoc
runs over a scratch tree that places proto/ at evdsearch/proto/: generated imports then read
`from evdsearch.proto.evdsearch.v1 import search_pb2` without editing protoc's output.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ("proto/evdsearch/v1/search.proto",)
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")  # what --python_out, --pyi_out, --grpc_python_out write


def generated_files(proto: str) -> list[str]:
    """Paths (relative to the root) protoc writes for one .proto file."""
    stem = proto.removesuffix(".proto")
    return [stem + suffix for suffix in SUFFIXES]


NAMESPACE = "evdsearch"  # the installed package that proto/ lives under


def run_protoc(src_root: Path, out_root: Path) -> None:
    """protoc over `NAMESPACE/PROTO` in a scratch tree; the generated files land at `out_root/PROTO`'s stem."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for proto in PROTOS:
            (scratch / NAMESPACE / proto).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src_root / proto, scratch / NAMESPACE / proto)
        for proto in PROTOS:
            args = ["grpc_tools.protoc", f"-I{scratch}", f"-I{well_known}", f"--python_out={scratch}",
                    f"--pyi_out={scratch}", f"--grpc_python_out={scratch}", str(scratch / NAMESPACE / proto)]
            if protoc.main(args) != 0:
                raise SystemExit(f"gen_proto: protoc failed on {proto}")
            for rel in generated_files(proto):
                (out_root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(scratch / NAMESPACE / rel, out_root / rel)


def check() -> int:
    """Regenerate into a temporary folder and diff against the committed files; 1 when stale."""
    stale = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        for proto in PROTOS:
            (tmp_root / proto).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / proto, tmp_root / proto)
        run_protoc(tmp_root, tmp_root)
        for proto in PROTOS:
            for rel in generated_files(proto):
                fresh = (tmp_root / rel).read_text(encoding="utf-8").splitlines(keepends=True)
                committed_path = ROOT / rel
                committed = (committed_path.read_text(encoding="utf-8").splitlines(keepends=True)
                             if committed_path.is_file() else [])
                if fresh != committed:
                    stale += 1
                    sys.stdout.writelines(difflib.unified_diff(committed, fresh, f"committed/{rel}",
                                                               f"regenerated/{rel}"))
    if stale:
        print(f"gen_proto: {stale} generated file(s) are stale; run `python scripts/gen_proto.py`")
        return 1
    print("gen_proto: generated modules are current")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the committed files are stale")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    run_protoc(ROOT, ROOT)
    for proto in PROTOS:
        print("gen_proto: wrote", ", ".join(generated_files(proto)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
