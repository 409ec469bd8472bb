"""Optional engines stay optional: the CLI and the default index path never import Ray or Milvus."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from evdsearch.cli import build_parser
build_parser().parse_args(["index", "x", "--out", "y"])
import evdsearch.indexer.build, evdsearch.indexer.store, evdsearch.engine.search
print(sorted({m.split(".")[0] for m in sys.modules} & {"ray", "pymilvus", "milvus_lite"}))
"""


def test_cli_and_default_path_do_not_import_ray_or_milvus() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
