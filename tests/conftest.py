"""Shared fixtures: tiny in-process models and data that every stage's tests can use."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["grpc_internal_guard"]  # any INTERNAL status fails the test that caused it


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised evd-tiny CLIP saved as a checkpoint folder (seconds to build)."""
    import open_clip
    import torch

    from evdsearch.clip_models import create_clip, model_config, save_clip_checkpoint

    torch.manual_seed(0)
    clip = create_clip("evd-tiny", device="cpu")
    out = tmp_path_factory.mktemp("tiny_clip")
    preprocess_cfg = open_clip.get_model_preprocess_cfg(clip.model)
    return save_clip_checkpoint(clip.model, model_config("evd-tiny"), preprocess_cfg, out)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small shapes world (64 / 16 / 32 images, 2 / 1 / 1 classification images per entity)."""
    from evdsearch.training.shapes_world.generate import WorldConfig, make_world

    out = tmp_path_factory.mktemp("tiny_world") / "world"
    return make_world(WorldConfig(out=out, seed=0, n_train=64, n_val=16, n_test=32,
                                  cls_per_entity=(2, 1, 1), progress=False))


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[Path, Path]:
    """(index of twelve captioned PNGs, KB): one pair per test module, built by test_engine_support."""
    from test_engine_support import build_parts

    return build_parts(tmp_path_factory.mktemp("parts"), tiny_clip_dir)


@pytest.fixture(scope="module")
def engine(parts: tuple[Path, Path]) -> Iterator[Any]:
    """A CPU SearchEngine over `parts`, open for the whole module."""
    from test_engine_support import open_engine

    with open_engine(*parts) as opened:
        yield opened


@pytest.fixture(scope="module")
def local(parts: tuple[Path, Path]) -> Iterator[Any]:
    """What `demo --index` talks to (test_demo_support.local_backend) over `parts`, stopped after the module."""
    from test_demo_support import local_backend

    backend = local_backend(*parts)
    yield backend
    backend.close()


@pytest.fixture()
def evd(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """`evd(*argv)` runs `evdsearch` in this process and returns (exit code, stdout, stderr)."""
    import evdsearch.cli as cli

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server cert for localhost / 127.0.0.1 and a client cert, all signed by the CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(d / f"{name}.key"),
                 "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", "2", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))
    return d
