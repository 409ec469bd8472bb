"""Drawing a scene with PIL: supersampled shapes with textures, downsampled to the image size."""

from __future__ import annotations

import io
import math
from typing import Any

from PIL import Image, ImageDraw

from evdsearch.training.shapes_world.scene import Scene
from evdsearch.training.shapes_world.vocab import Lexicon

SUPERSAMPLE = 4  # draw 4x larger, then downsample: smooth edges without antialiasing support in ImageDraw
PATTERN_PERIOD = 6.0  # stripe / dot / check period in output pixels at image size 64


def _polygon(n: int, w: float, h: float, rotation: float = 0.0, inner: float | None = None) -> list[tuple]:
    """A regular polygon (or a star when `inner` is given) filling a w x h box."""
    points = []
    steps = 2 * n if inner else n
    for i in range(steps):
        radius = inner if inner and i % 2 else 1.0
        angle = rotation + 2 * math.pi * i / steps - math.pi / 2
        points.append((w / 2 + radius * w / 2 * math.cos(angle), h / 2 + radius * h / 2 * math.sin(angle)))
    return points


def shape_mask(shape: str, w: int, h: int) -> Image.Image:
    """An L-mode mask (255 inside) of `shape` filling a w x h box."""
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    box = (0, 0, w - 1, h - 1)
    if shape in ("circle", "oval"):
        d.ellipse(box, fill=255)
    elif shape in ("square", "rectangle"):
        d.rectangle(box, fill=255)
    elif shape == "triangle":
        d.polygon([(w / 2, 0), (w - 1, h - 1), (0, h - 1)], fill=255)
    elif shape == "diamond":
        d.polygon([(w / 2, 0), (w * 0.86, h / 2), (w / 2, h - 1), (w * 0.14, h / 2)], fill=255)
    elif shape == "octagon":
        d.polygon(_polygon(8, w, h, rotation=math.pi / 8), fill=255)
    elif shape == "hexagon":
        d.polygon(_polygon(6, w, h, rotation=math.pi / 6), fill=255)
    elif shape == "star":
        d.polygon(_polygon(5, w, h, inner=0.45), fill=255)
    elif shape == "heart":
        r = w * 0.27
        d.ellipse((w * 0.03, h * 0.05, w * 0.03 + 2 * r, h * 0.05 + 2 * r), fill=255)
        d.ellipse((w * 0.97 - 2 * r, h * 0.05, w * 0.97, h * 0.05 + 2 * r), fill=255)
        d.polygon([(w * 0.05, h * 0.42), (w * 0.95, h * 0.42), (w / 2, h - 1)], fill=255)
        d.rectangle((w * 0.3, h * 0.2, w * 0.7, h * 0.5), fill=255)
    elif shape == "cross":
        t = 0.34
        d.rectangle((w * (0.5 - t / 2), 0, w * (0.5 + t / 2), h - 1), fill=255)
        d.rectangle((0, h * (0.5 - t / 2), w - 1, h * (0.5 + t / 2)), fill=255)
    elif shape == "crescent":
        d.ellipse(box, fill=255)
        d.ellipse((w * 0.32, -h * 0.08, w * 1.2, h * 0.92), fill=0)
    elif shape == "ring":
        d.ellipse(box, fill=255)
        d.ellipse((w * 0.27, h * 0.27, w * 0.73, h * 0.73), fill=0)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask


def fill_layer(obj: dict[str, Any], w: int, h: int, period: float, lex: Lexicon) -> Image.Image:
    """The object's colour with its texture in the pattern colour, before the shape is cut out."""
    layer = Image.new("RGB", (w, h), tuple(lex.colors[obj["color"]]["rgb"]))
    if obj["texture"] == "plain":
        return layer
    pc = tuple(lex.colors[obj["pattern_color"]]["rgb"])
    d = ImageDraw.Draw(layer)
    half = period / 2
    if obj["texture"] == "striped":  # diagonal stripes read as stripes even on thin shapes
        for k in range(-int(h / period) - 2, int((w + h) / period) + 2):
            x = k * period
            d.polygon([(x, 0), (x + half, 0), (x + half - h, h), (x - h, h)], fill=pc)
    elif obj["texture"] == "dotted":
        r = period * 0.28
        for row, y in enumerate(_range(half / 2 + r, h, period * 0.85)):
            offset = half if row % 2 else 0.0
            for x in _range(half / 2 + r + offset - half, w, period):
                d.ellipse((x - r, y - r, x + r, y + r), fill=pc)
    elif obj["texture"] == "checkered":
        for i, y in enumerate(_range(0, h, half)):
            for j, x in enumerate(_range(0, w, half)):
                if (i + j) % 2:
                    d.rectangle((x, y, x + half - 1, y + half - 1), fill=pc)
    return layer


def _range(start: float, stop: float, step: float) -> list[float]:
    out, v = [], start
    while v < stop:
        out.append(v)
        v += step
    return out


def render_scene(scene: Scene, image_size: int, lex: Lexicon) -> Image.Image:
    """The scene as an RGB image of `image_size` pixels square."""
    s = SUPERSAMPLE
    canvas = Image.new("RGB", (image_size * s, image_size * s), tuple(lex.backgrounds[scene.background]["rgb"]))
    period = PATTERN_PERIOD * image_size / 64 * s
    for obj in scene.objects:
        x0, y0, x1, y1 = obj["bbox"]
        w, h = (x1 - x0) * s, (y1 - y0) * s
        canvas.paste(fill_layer(obj, w, h, period, lex), (x0 * s, y0 * s), shape_mask(obj["shape"], w, h))
    return canvas.resize((image_size, image_size), Image.Resampling.BOX)


def png_bytes(image: Image.Image) -> bytes:
    """PNG bytes with no metadata, so the same image always gives the same file."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()
