"""Query images are shrunk while decoding: a big photo never costs full-size RGB for a 224 px model."""

from __future__ import annotations

import io

import pytest

from evdsearch.engine.api import DECODE_SIDE
from evdsearch.engine.validation import decode_image
from evdsearch.errors import InvalidInput


def _encoded(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("mode", "fmt"), [("RGB", "JPEG"), ("L", "JPEG"), ("RGB", "PNG"), ("P", "PNG"),
                                           ("1", "PNG"), ("I;16", "PNG"), ("RGBA", "WEBP"), ("L", "TIFF")])
def test_large_images_decode_small_and_rgb(mode: str, fmt: str) -> None:
    image = decode_image(_encoded(mode, (4000, 3000), fmt))
    assert image.mode == "RGB"
    assert DECODE_SIDE <= min(image.size) < 2 * DECODE_SIDE  # shrunk, but never below what the model needs
    assert abs(image.size[0] * 3 - image.size[1] * 4) <= 4  # aspect kept (to a pixel of rounding)


def test_small_images_are_left_alone() -> None:
    assert decode_image(_encoded("RGB", (100, 60), "PNG")).size == (100, 60)


def test_jpeg_draft_skips_the_full_size_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import JpegImagePlugin

    seen = []
    original = JpegImagePlugin.JpegImageFile.load

    def spy(self):  # noqa: ANN001, ANN202
        seen.append(self.size)  # the size the decoder really produces
        return original(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    decode_image(_encoded("RGB", (4000, 3000), "JPEG"))
    assert seen and max(seen)[0] <= 1000  # DCT-scaled to 1/4 while decoding


def test_non_image_formats_are_refused() -> None:
    with pytest.raises(InvalidInput, match="not a PNG, JPEG"):
        decode_image(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n")
