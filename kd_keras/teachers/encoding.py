"""Images sent encoded (PNG or JPEG), as TF Serving image classifiers exported with a string
input expect: REST ``{"b64": …}`` per instance, gRPC a ``DT_STRING`` tensor.

Encoding changes pixels: PNG keeps 8 bits per channel (exact for the uint8 pixels of real
photos, a rounding of a MixUp's mixed ones), JPEG is lossy. :func:`as_seen` gives the pixels
the teacher decodes, and the run trains its student on those, so teacher and student see the
same images; the answer cache keys them too.
"""

from __future__ import annotations

import io

import numpy as np

from kd_keras.errors import ConfigError

ENCODINGS = ("none", "png", "jpeg")
JPEG_QUALITY = 95


def _check(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ConfigError(f"query.encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")


def _pixels(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)


def encode(image: np.ndarray, encoding: str) -> bytes:
    """One float image in [0, 1] (height, width, 1 or 3) as PNG or JPEG bytes."""
    from PIL import Image

    _check(encoding)
    pixels = _pixels(image)
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buffer = io.BytesIO()
    if encoding == "png":
        picture.save(buffer, "PNG")
    else:
        picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def decode(data: bytes, channels: int = 0) -> np.ndarray:
    """Encoded bytes back to a float image in [0, 1] with ``channels`` channels (0: as
    stored, grey or RGB)."""
    from PIL import Image

    picture = Image.open(io.BytesIO(data))
    if channels == 0:
        channels = 1 if picture.mode in ("L", "I", "I;16", "1") else 3
    picture = picture.convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(picture, np.float32) / 255.0
    return pixels[..., None] if channels == 1 else pixels


def as_seen(images: np.ndarray, encoding: str) -> np.ndarray:
    """The pixels a teacher decodes from ``images`` sent with ``encoding`` (``none``: the
    images themselves, not copied)."""
    _check(encoding)
    if encoding == "none":
        return images
    if encoding == "png":  # lossless for 8-bit pixels: the rounding is all that changes
        return _pixels(images).astype(np.float32) / 255.0
    channels = images.shape[-1]
    return np.stack([decode(encode(image, encoding), channels) for image in images])
