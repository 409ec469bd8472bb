"""One namespace: a non-editable install holds only `evdsearch`, and its import layers pass `lint-imports`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# lint-imports through the interpreter, so any venv that has import-linter runs it (no console script needed)
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install --target` of the checkout, as a user's non-editable install lays it out."""
    target = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert build.returncode == 0, build.stderr[-3000:]
    return target


def _python(code: str, cwd: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def _lint(site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}  # one line per contract
    return subprocess.run([*LINT_IMPORTS, "--no-cache", str(ROOT / "pyproject.toml")], cwd=site, env=env,
                          capture_output=True, text=True, timeout=300)


def test_only_top_level_package_is_evdsearch(installed: Path) -> None:
    top = sorted(p.name for p in installed.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin")
    assert top == ["evdsearch"]
    for sub in ("engine", "indexer", "training", "benchmarks", "proto", "evaluation", "client", "demo"):
        assert (installed / "evdsearch" / sub / "__init__.py").is_file(), sub


def test_no_run_logs_shipped_as_package_data(installed: Path) -> None:
    shipped = [p.relative_to(installed) for p in (installed / "evdsearch").rglob("*.jsonl")]
    assert shipped == []


def test_imports_ignore_unrelated_engine_and_proto_folders(installed: Path, tmp_path: Path) -> None:
    for name in ("engine", "proto"):  # what a user's working directory may hold
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("DECOY = True\n")
    code = ("import engine, proto, evdsearch.engine.search as s, evdsearch.proto.evdsearch.v1.search_pb2_grpc as g; "
            "print(engine.DECOY, proto.DECOY); print(s.__file__); print(g.__file__)")
    run = _python(code, tmp_path, installed)
    assert run.returncode == 0, run.stderr[-3000:]
    decoys, search_file, grpc_file = run.stdout.splitlines()
    assert decoys == "True True"
    assert Path(search_file).is_relative_to(installed) and Path(grpc_file).is_relative_to(installed)


def test_every_file_has_one_path_in_the_checkout() -> None:
    """No tracked symlinks: engine/, indexer/, ... install as evdsearch.* through setup.py, not through links."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [line for line in listed.splitlines() if line.startswith("120000")] == []


def _contracts() -> dict[str, dict]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return {c["id"]: c for c in config}


def test_core_contract_lists_every_core_module() -> None:
    """A new module in evdsearch/ must join the core contract (or the top layer), or it could import any layer
    unchecked."""
    contracts = _contracts()
    top = {name.strip() for name in contracts["layers"]["layers"][0].split(":")}
    on_disk = {f"evdsearch.{p.stem}" for p in (ROOT / "evdsearch").glob("*.py") if p.stem != "__init__"}
    assert set(contracts["core"]["source_modules"]) == on_disk - top
    assert top <= on_disk


def test_search_core_contract_lists_every_engine_module_but_the_transports() -> None:
    """A new module in engine/ outside grpc_server/ and cli/ must join the transport-free search core."""
    engine = ROOT / "engine"
    on_disk = {f"evdsearch.engine.{p.stem}" for p in engine.glob("*.py") if p.stem != "__init__"}
    on_disk |= {f"evdsearch.engine.{p.parent.name}" for p in engine.glob("*/__init__.py")
                if p.parent.name not in ("grpc_server", "cli")}
    assert set(_contracts()["search-core"]["source_modules"]) == on_disk | {"evdsearch.search_api"}


def test_layer_contracts_hold(installed: Path) -> None:
    run = _lint(installed)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


# contract (the start of its name) -> (module, the import added to it) that must break it, and only it
BREAKS = {
    # training and benchmarks share only the neutral evaluation layer; the kb verbs sit on top, the KB at the bottom
    "Layers": [("training/deqr/build.py", "import evdsearch.benchmarks.index_scale"),
               ("indexer/verify_cli.py", "import evdsearch.kb_cli")],
    "The core": [("plots.py", "import evdsearch.engine.api")],  # the shared core reaches into no layer
    # the search core knows no transport, directly or through another module
    "The search core": [("engine/search.py", "import grpc"), ("engine/fusion.py", "import argparse"),
                        ("engine/rewriting.py", "import gradio"), ("search_api.py", "from google.protobuf import message"),
                        ("engine/hydrate.py", "import evdsearch.engine.grpc_server.uris"),
                        ("engine/encoding.py", "import evdsearch.engine.cli.speed_options")],
    "Clients reach the server": [("client/admin_cli.py", "import evdsearch.engine.api")],
    "The demo is a client": [("demo/results.py", "import evdsearch.engine.api"), ("demo/render.py", "import evdsearch.indexer.kb")],
    "The server's packages": [("evaluation/recall.py", "import evdsearch.client.render")],
    "Generated gRPC modules": [("proto/evdsearch/v1/search_pb2.py", "import evdsearch.search_api")],
}


@pytest.mark.parametrize(("contract", "module", "bad_import"),
                         [(contract, *case) for contract, cases in BREAKS.items() for case in cases])
def test_a_cross_layer_import_breaks_a_contract(installed: Path, tmp_path: Path, contract: str, module: str,
                                                 bad_import: str) -> None:
    site = tmp_path / "site"
    shutil.copytree(installed / "evdsearch", site / "evdsearch")
    path = site / "evdsearch" / module
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    run = _lint(site)
    assert run.returncode != 0
    broken = [line for line in run.stdout.splitlines() if line.endswith("BROKEN")]
    assert len(broken) == 1 and broken[0].startswith(contract), run.stdout[-3000:]


def test_every_contract_is_shown_to_break() -> None:
    names = [c["name"] for c in _contracts().values()]
    assert all(any(name.startswith(key) for key in BREAKS) for name in names), names


def test_package_code_reads_nothing_from_docs() -> None:
    """docs/ holds results and prose; no default input or path of the package points into it."""
    import ast

    found = []
    for folder in ("evdsearch", "engine", "indexer", "training", "benchmarks", "proto"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("docs/"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_modules_stay_small() -> None:
    """A module does one job: none over 300 lines outside tests and generated code."""
    long = [f"{path.relative_to(ROOT)} ({n})" for folder in ("evdsearch", "engine", "indexer", "training", "benchmarks",
                                                           "proto", "scripts")
            for path in (ROOT / folder).rglob("*.py") if "_pb2" not in path.name
            and (n := len(path.read_text(encoding="utf-8").splitlines())) > 300]
    assert long == []
