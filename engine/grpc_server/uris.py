"""What hit URIs a gRPC client sees: relative to the index's image root, so absolute server paths stay private."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any


def image_root(manifest: Any) -> str | None:
    """The folder the index's images were collected from (folder source: its path; Karpathy: images_root)."""
    source = getattr(manifest, "source", None) or {}
    root = source.get("images_root") or (source.get("path") if source.get("type") == "folder" else None)
    return str(root) if root else None


def public_uri(uri: str, root: str | None) -> str:
    """`uri` relative to `root`; an absolute path outside it is cut to its file name; other URIs pass."""
    path = PurePosixPath(uri)
    if not path.is_absolute():
        return uri  # already relative, or a URL such as https://...
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.name


def hide_paths(response: Any, root: str | None) -> Any:
    """Rewrite every hit URI of a protobuf SearchResponse in place; returns it."""
    for hit in response.hits:
        hit.uri = public_uri(hit.uri, root)
    return response


def public_name(value: str) -> str:
    """A model, weights file or rewriter folder as a client sees it: an absolute path shrinks to its last part."""
    path = PurePosixPath(value)
    return path.name if path.is_absolute() else value


def hide_info_paths(info: Any) -> Any:
    """Info / Rewrite responses name the CLIP folder, weights file and rewriter folder: keep only their names."""
    for name in ("model", "pretrained", "rewriter"):
        if hasattr(info, name) and isinstance(getattr(info, name), str):
            setattr(info, name, public_name(getattr(info, name)))
    return info
