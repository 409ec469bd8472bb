"""Request validation: every malformed SearchRequest is refused with an InvalidInput saying what is wrong."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evdsearch.engine.api import DECODE_SIDE
from evdsearch.errors import InvalidInput, ResourceExhausted
from evdsearch.search_api import (
    MAX_BATCH,
    MAX_BATCH_PIXELS,
    MAX_IMAGE_PIXELS,
    MAX_K,
    MAX_QUERY_CHARS,
    MODES,
    SearchRequest,
)


@dataclass
class Query:
    """A checked request: exactly one of text, image, vector is set."""

    text: str | None  # stripped text query
    image: Any  # decoded PIL image
    vector: np.ndarray | None  # L2-normalised float32 (dim,)
    k: int
    mode: str
    alpha: float | None  # the request's own weight of the rewritten query; None: the engine's AlphaPolicy decides
    explain: bool


def check_text(text: Any) -> str:
    """A non-empty text query of at most MAX_QUERY_CHARS characters, stripped."""
    if not isinstance(text, str):
        raise InvalidInput(f"query text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise InvalidInput("query text is empty (or only whitespace)")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query text is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}")
    return text.strip()


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return int(k)


def check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) \
            or not math.isfinite(alpha) or not 0.0 <= alpha <= 1.0:
        raise InvalidInput(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # PIL decoders tried; never EPS (Ghostscript) etc.


def _open_image(data: Any) -> Any:
    """A lazily opened PIL image of one of IMAGE_FORMATS (only the header is read)."""
    from PIL import Image

    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise InvalidInput("image is empty: send the bytes of an encoded image (PNG, JPEG, ...)")
    return Image.open(io.BytesIO(bytes(data)), formats=IMAGE_FORMATS)


def image_pixels(data: Any) -> int:
    """Width x height from the image header (0 when it cannot be read: decoding then says why)."""
    try:
        with _open_image(data) as image:
            width, height = image.size
            return int(width) * int(height)
    except Exception:  # noqa: BLE001 - any header problem is reported by decode_image with its reason
        return 0


def decode_image(data: Any, side: int = DECODE_SIDE) -> Any:
    """A decoded PIL image in RGB whose short side is at least `side` (or its own, when smaller).

    Big images are shrunk while decoding (JPEG draft: DCT scaling), then by an integer factor
    (`reduce`) before the RGB conversion, so a large photo never costs full-size RGB memory for a
    224 px model. Undecodable bytes are the caller's error.
    """
    from PIL import Image

    try:
        with _open_image(data) as image:
            width, height = image.size  # read from the header; nothing is decoded yet
            if width * height > MAX_IMAGE_PIXELS:
                raise InvalidInput(f"image is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS:,} pixels")
            if image.format == "JPEG":
                image.draft("RGB", (side, side))  # decodes at 1/2, 1/4 or 1/8 size, short side still >= side
            image.load()
            factor = min(image.size) // side
            if factor < 2:
                return image.convert("RGB")
            if image.mode == "P":  # palette and 1-bit/16-bit grey: modes `reduce` lacks
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode in ("1", "I;16", "I;16B", "I;16L"):
                image = image.convert("L")
            return image.reduce(factor).convert("RGB")
    except Image.UnidentifiedImageError as err:  # its message names a BytesIO object: say what is accepted
        raise InvalidInput(f"image could not be decoded: not a {', '.join(IMAGE_FORMATS)} image "
                           f"(or a damaged one)") from err
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise InvalidInput(f"image could not be decoded ({type(err).__name__}: {err})") from err


def check_embedding(embedding: Any, dim: int) -> np.ndarray:
    """A finite, non-zero vector of the index dimension, L2-normalised (scores are cosine similarities)."""
    try:
        vector = np.asarray(embedding, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"embedding must be a list of numbers ({err})") from err
    if vector.ndim != 1 or vector.shape[0] != dim:
        raise InvalidInput(f"embedding has shape {vector.shape}; this index needs a vector of dimension {dim}")
    if not np.all(np.isfinite(vector)):
        raise InvalidInput("embedding contains NaN or infinite values")
    norm = float(np.linalg.norm(vector.astype(np.float64)))  # float64: squares of large float32s overflow
    if norm == 0.0:
        raise InvalidInput("embedding is all zeros")
    return (vector.astype(np.float64) / norm).astype(np.float32)


def _given(name: str, value: Any) -> bool:
    """Whether a request field was set; an empty text counts (it is then refused as empty)."""
    if value is None:
        return False
    if name == "text":
        return True
    if name == "embedding":
        return bool(np.size(value))
    return len(value) > 0 if hasattr(value, "__len__") else True


def check_request(req: SearchRequest, dim: int) -> Query:
    """Validate one request, cheapest checks first, decoding the image last."""
    fields = {"text": req.text, "image": req.image_bytes, "embedding": req.embedding}
    given = [name for name, value in fields.items() if _given(name, value)]
    if len(given) != 1:
        what = " and ".join(given) if given else "none"
        raise InvalidInput(f"give exactly one of text, image or embedding per request (got {what})")
    alpha = None if req.alpha is None else check_alpha(req.alpha)
    k, mode = check_k(req.k), check_mode(req.mode)
    kind = given[0]
    return Query(
        text=check_text(req.text) if kind == "text" else None,
        image=decode_image(req.image_bytes) if kind == "image" else None,
        vector=check_embedding(req.embedding, dim) if kind == "embedding" else None,
        k=k, mode=mode, alpha=alpha, explain=bool(req.explain),
    )


def check_batch_pixels(reqs: Any) -> None:
    """Refuse, before decoding any, a batch whose images add up to more than MAX_BATCH_PIXELS."""
    sizes = [image_pixels(req.image_bytes) for req in reqs if req.image_bytes]
    sizes = [n for n in sizes if n <= MAX_IMAGE_PIXELS]  # bigger ones are refused one by one (INVALID_ARGUMENT)
    if len(sizes) > 1 and sum(sizes) > MAX_BATCH_PIXELS:
        raise ResourceExhausted(f"the batch's {len(sizes)} images hold {sum(sizes):,} pixels together; the limit "
                                f"is {MAX_BATCH_PIXELS:,} per batch: send fewer or smaller images per call")


def check_batch(reqs: Any, dim: int) -> list[Query]:
    """Validate every request of a batch; the first bad one is named by its position."""
    if len(reqs) > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} requests, got {len(reqs)}")
    check_batch_pixels(reqs)
    checked = []
    for position, req in enumerate(reqs):
        try:
            checked.append(check_request(req, dim))
        except InvalidInput as err:
            if len(reqs) == 1:
                raise
            raise InvalidInput(f"request {position}: {err}") from err
    return checked
