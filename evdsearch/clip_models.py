"""One factory for CLIP models: open_clip names + pretrained tags, local checkpoints, our tiny configs.

Every caller (indexer, engine, training, benchmarks) loads CLIP through `load_clip`, so the
offline rule ("hub tags fail in one clear line") and device choice live here only.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.device import resolve_device
from evdsearch.errors import InvalidInput, ModelUnavailable, NotFound

CONFIG_DIR = Path(__file__).parent / "model_configs"
CKPT_CONFIG = "open_clip_config.json"  # open_clip's local-dir / hf-hub config file name
CKPT_WEIGHTS = "open_clip_model.safetensors"  # open_clip's preferred weights file name
HUB_HOST = os.environ.get("EVDSEARCH_HUB_HOST", "huggingface.co")


@cache
def register_model_configs() -> list[str]:
    """Register evdsearch's own architectures (JSON files) with open_clip's model registry."""
    import open_clip

    names = []
    for path in sorted(CONFIG_DIR.glob("*.json")):
        open_clip.add_model_config(path)
        names.append(path.stem)
    return names


def is_checkpoint_dir(model: str | os.PathLike) -> bool:
    """A folder written by `save_clip_checkpoint` (or any open_clip local-dir checkpoint)."""
    return (Path(model) / CKPT_CONFIG).is_file()


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Content checksum used in manifests to tell checkpoints apart."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ClipIdentity:
    """What a manifest records to refuse an index built with another model."""

    model: str  # architecture name or absolute checkpoint folder
    pretrained: str  # pretrained tag, weights path, or "" for random / checkpoint folders
    fingerprint: str  # sha256 of the weights file, or "name:tag" for hub weights
    embed_dim: int  # size of the joint embedding


@dataclass
class LoadedClip:
    """A CLIP model ready to encode, with its preprocessing and tokenizer."""

    model: Any  # open_clip CLIP module, in eval mode
    preprocess: Any  # PIL image -> tensor (eval transform)
    tokenizer: Any  # list[str] -> token tensor
    device: str  # torch device string
    identity: ClipIdentity
    trim: bool = False  # true-length text encoding is exact for this tower (causal mask + EOT pooling)

    @property
    def embed_dim(self) -> int:
        return self.identity.embed_dim

    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """L2-normalised float32 text embeddings, shape (len(texts), dim)."""
        import torch

        from evdsearch.true_length import encode_text_prefix, length_groups, token_lengths

        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        out = np.zeros((len(texts), self.embed_dim), dtype=np.float32)
        with torch.inference_mode():
            if not self.trim:
                for start in range(0, len(texts), batch_size):
                    tokens = self.tokenizer(texts[start : start + batch_size]).to(self.device)
                    out[start : start + len(tokens)] = self.model.encode_text(tokens, normalize=True).float().cpu()
                return out
            tokens = self.tokenizer(texts)
            lengths = token_lengths(tokens)
            for group in length_groups(lengths, batch_size):  # similar lengths share one call
                rows = tokens[torch.from_numpy(group), : int(lengths[group].max())].to(self.device)
                out[group] = encode_text_prefix(self.model, rows, normalize=True).float().cpu().numpy()
        return out

    def encode_pil_images(self, images: list[Any]) -> np.ndarray:
        """L2-normalised float32 embeddings of PIL images (one batch)."""
        import torch

        if not images:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        batch = torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device)
        with torch.inference_mode():
            feats = self.model.encode_image(batch, normalize=True)
        return feats.float().cpu().numpy().astype(np.float32)


def _model_embed_dim(model: Any) -> int:
    proj = getattr(model, "text_projection", None)
    if proj is not None:
        return int(proj.shape[-1] if hasattr(proj, "shape") else proj.out_features)
    return int(model.visual.output_dim)


def create_clip(
    model: str,
    pretrained: str | None = None,
    device: str = "auto",
    train: bool = False,
) -> LoadedClip:
    """Build a CLIP from an open_clip name (+ tag or local weights file) or a checkpoint folder.

    Hub tags are only tried when the hub answers; offline they fail in one clear line.
    """
    import open_clip

    register_model_configs()
    dev = resolve_device(device)
    model_path = Path(model)
    if model_path.is_dir() or model.startswith("local-dir:"):
        folder = Path(model.removeprefix("local-dir:"))
        if not is_checkpoint_dir(folder):
            raise NotFound(f"{folder} is not a CLIP checkpoint folder (no {CKPT_CONFIG} inside)")
        if pretrained:
            raise InvalidInput("--pretrained cannot be combined with a checkpoint folder given as --model")
        name = f"local-dir:{folder.resolve()}"
        weights = folder / CKPT_WEIGHTS
        fingerprint = file_sha256(weights) if weights.is_file() else "random"
        identity_model, identity_pretrained = str(folder.resolve()), ""
        clip, _, preprocess = open_clip.create_model_and_transforms(name, device=dev)
        tokenizer = open_clip.get_tokenizer(name)
    else:
        if model not in open_clip.list_models():
            raise InvalidInput(
                f"unknown CLIP model {model!r}: give an open_clip architecture name "
                f"(see open_clip.list_models(), e.g. ViT-B-32 or evd-tiny) or a checkpoint folder"
            )
        fingerprint = f"{model}:{pretrained or 'random'}"
        if pretrained and Path(pretrained).expanduser().is_file():
            pretrained = str(Path(pretrained).expanduser().resolve())
            fingerprint = file_sha256(pretrained)
        elif pretrained and Path(pretrained).suffix in (".pt", ".bin", ".safetensors", ".pth"):
            raise NotFound(f"weights file not found: {pretrained}")
        elif pretrained and not _hub_reachable():
            raise ModelUnavailable(
                f"cannot download pretrained weights {model}/{pretrained}: the model hub is unreachable "
                f"(offline); pass a local file with --pretrained /path/to/weights.pt or a checkpoint "
                f"folder with --model DIR"
            )
        try:
            clip, _, preprocess = open_clip.create_model_and_transforms(
                model, pretrained=pretrained or None, device=dev
            )
        except RuntimeError as err:
            if "download" in str(err).lower():
                raise ModelUnavailable(f"cannot download {model}/{pretrained}: {err}") from err
            raise
        tokenizer = open_clip.get_tokenizer(model)
        identity_model, identity_pretrained = model, pretrained or ""
    from evdsearch.true_length import can_trim

    clip.train(train)
    identity = ClipIdentity(identity_model, identity_pretrained, fingerprint, _model_embed_dim(clip))
    return LoadedClip(model=clip, preprocess=preprocess, tokenizer=tokenizer, device=dev, identity=identity,
                      trim=can_trim(clip))


def load_clip(model: str, pretrained: str | None = None, device: str = "auto") -> LoadedClip:
    """`create_clip` in eval mode: what indexing, search and benchmarks use."""
    return create_clip(model, pretrained=pretrained, device=device, train=False)


def save_clip_checkpoint(
    clip_model: Any, model_cfg: dict[str, Any], preprocess_cfg: dict[str, Any], out_dir: str | Path,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a folder that `open_clip.create_model_and_transforms('local-dir:DIR')` loads back."""
    from safetensors.torch import save_file

    from evdsearch.atomic import write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in clip_model.state_dict().items()}
    tmp = out / f".{CKPT_WEIGHTS}.tmp"
    save_file(state, str(tmp))
    os.replace(tmp, out / CKPT_WEIGHTS)
    write_json_atomic(out / CKPT_CONFIG, {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg})
    if extra is not None:
        write_json_atomic(out / "evdsearch.json", extra)
    return out


def model_config(name: str) -> dict[str, Any]:
    """The architecture dict for a registered open_clip model name."""
    import open_clip

    register_model_configs()
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise InvalidInput(f"unknown CLIP architecture {name!r}")
    return json.loads(json.dumps(cfg))
