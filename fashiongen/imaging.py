"""Turn any picture, a dataset file or a user's upload, into a model input: uint8, 80 tall x 60 wide x RGB.

`load_image` is the only way images enter FashionGen, so training data and uploads are
preprocessed identically. Plain 60x80 JPEGs (every dataset photo) take a fast libjpeg-turbo
path (simplejpeg) whose pixels are identical to Pillow's; everything else goes through Pillow:
EXIF orientation, any mode to RGB, transparency onto white, then fit to 3:4 and resize.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from fashiongen.files import FileReadError, FileTooLargeError, read_bounded

IMAGE_HEIGHT = 80
IMAGE_WIDTH = 60
IMAGE_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH, 3)

# Uploads bigger than this are refused before decoding; the app's upload cap matches it.
MAX_FILE_BYTES = 50 * 1024 * 1024
# A 10000x10000 photo (100 MP) still loads; beyond that a picture is refused, because a small
# compressed file can expand to gigabytes when decoded (a "decompression bomb").
MAX_PIXELS = 100_000_000
# Padding to 3:4 builds a canvas at most this big (12 MB of RGB); a picture whose canvas would be
# bigger (a 1x100000 strip pads to 75000x100000, 22 GB) is shrunk first, so the work is bounded
# by the output, not by the aspect ratio. Smaller canvases take the exact pad-then-resize path.
_MAX_CANVAS_PIXELS = 4_000_000
# Bump when the preprocessing changes: decoded-array caches made by older code are then rebuilt.
PREPROCESSING_VERSION = 2  # 2: pictures padding to a canvas over _MAX_CANVAS_PIXELS shrink first

# The dataset's photos have white backgrounds: transparency and padding become white.
_BACKGROUND = (255, 255, 255)

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class ImageError(ValueError):
    """An image that cannot become a model input; the message is meant for the user."""


class ImageDecodeError(ImageError):
    """The bytes are empty, not an image, or a corrupt/truncated image."""


class ImageTooLargeError(ImageError):
    """The file or its decoded pixel count is over the limits."""


def load_image(source: ImageSource, name: str | None = None) -> np.ndarray:
    """Read one image (path, bytes or binary file object) as uint8 RGB of shape (80, 60, 3).

    `name` only labels error messages (an upload's file name, say). Raises `ImageError`
    subclasses with a message that says what is wrong in words a user understands.
    """
    data, label = _read_bytes(source, name)
    if not data:
        raise ImageDecodeError(f"{label} is empty (0 bytes), not an image.")
    fast = _decode_plain_jpeg(data)
    if fast is not None:
        return fast
    return _decode_with_pillow(data, label)


def _read_bytes(source: ImageSource, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "the image"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        data = read_image_file(path, label)
    else:  # a binary file object, e.g. Streamlit's UploadedFile
        label = name or getattr(source, "name", None) or "the upload"
        data = source.read(MAX_FILE_BYTES + 1)
        if isinstance(data, str):
            raise ImageDecodeError(f"{label} was opened as text; open it in binary mode.")
    _check_file_size(len(data), label)
    return data, label


def read_image_file(path: str | os.PathLike, label: str | None = None) -> bytes:
    """A regular file's bytes for `load_image`, at most MAX_FILE_BYTES + 1 read whatever its size claims;
    raises `ImageError` for a folder, a device or pipe, a file over the limit or one that cannot be read."""
    label = label or str(path)
    try:
        return read_bounded(path, MAX_FILE_BYTES, label)
    except FileTooLargeError as error:
        _check_file_size(error.size, label)
        raise  # unreachable: the size is over MAX_FILE_BYTES
    except FileReadError as error:
        not_a_file = not isinstance(error.__cause__, OSError)  # a folder or a device, not a failed read
        raise ImageDecodeError(f"{error}{', not an image' if not_a_file else ''}.") from error


def _check_file_size(size: int, label: str) -> None:
    if size > MAX_FILE_BYTES:
        raise ImageTooLargeError(
            f"{label} is {size / 2**20:.1f} MB; images up to {MAX_FILE_BYTES // 2**20} MB are accepted."
        )


def _decode_plain_jpeg(data: bytes) -> np.ndarray | None:
    """Decode a baseline 60x80 YCbCr/grey JPEG without EXIF, or return None to use Pillow.

    Pillow and simplejpeg both run libjpeg-turbo with its default (islow) settings, so the
    pixels are identical; this path skips Pillow's per-file overhead (about 2.5x faster).
    """
    if not data.startswith(b"\xff\xd8") or b"Exif\x00\x00" in data[:65536]:
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if (height, width) != (IMAGE_HEIGHT, IMAGE_WIDTH) or colorspace not in ("YCbCr", "Gray"):
            return None
        return simplejpeg.decode_jpeg(data, colorspace="RGB")
    except ValueError:
        return None  # Pillow decides, and words the error if the file is really broken


def _decode_with_pillow(data: bytes, label: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit below; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageTooLargeError(
                    f"{label} is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
                    f"pictures up to {MAX_PIXELS / 1e6:.0f} MP are accepted."
                )
            if image.format == "JPEG":
                # Let libjpeg decode big photos at 1/2..1/8 scale: far less time and memory.
                image.draft("RGB", (IMAGE_HEIGHT * 2, IMAGE_HEIGHT * 2))
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError as error:
        raise ImageDecodeError(f"{label} is not an image format we can read (JPEG, PNG, WebP, ...).") from error
    except Image.DecompressionBombError as error:
        # Pillow refuses more than 2 x Image.MAX_IMAGE_PIXELS in Image.open, before our check can
        # say the size; its message holds the pixel count, its wording is not ours.
        count = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(count.group(1)) / 1e6:.0f} MP" if count else f"over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} MP"
        raise ImageTooLargeError(
            f"{label} is {size}; pictures up to {MAX_PIXELS / 1e6:.0f} MP are accepted."
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"{label} is a corrupt or truncated image ({error}).") from error
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the user the picture itself
        pass
    rgb = _to_rgb(image)
    if rgb.size != (IMAGE_WIDTH, IMAGE_HEIGHT):
        rgb = _fit(rgb)
    return np.asarray(rgb, dtype=np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparent pixels become white."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # convert("RGB") would clip 16-bit values at 255 (an all-white picture): rescale instead.
        values = np.asarray(image, dtype=np.float64)
        brightest = values.max(initial=0)
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F":
            top = 1.0 if brightest <= 1.0 else 255.0
        else:  # 32-bit "I": 16-bit PNGs on some Pillow versions, rarely 8-bit data
            top = 65535.0 if brightest > 255 else 255.0
        grey = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode == "RGB":
        return image
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _fit(image: Image.Image) -> Image.Image:
    """Pad to the dataset's 3:4 aspect with white (no stretching), then resize to 60x80.

    When the padded canvas would exceed _MAX_CANVAS_PIXELS the picture is first shrunk (area
    average) so its canvas fits; the result differs from the exact path by a level or so.
    """
    canvas_size = _canvas_size(*image.size)
    canvas_pixels = canvas_size[0] * canvas_size[1]
    if canvas_pixels > _MAX_CANVAS_PIXELS:
        image = _shrink(image, math.sqrt(_MAX_CANVAS_PIXELS / canvas_pixels))
        canvas_size = _canvas_size(*image.size)
    width, height = image.size
    if canvas_size != image.size:
        canvas = Image.new("RGB", canvas_size, _BACKGROUND)
        canvas.paste(image, ((canvas_size[0] - width) // 2, (canvas_size[1] - height) // 2))
        image = canvas
    return image.resize((IMAGE_WIDTH, IMAGE_HEIGHT), Image.Resampling.LANCZOS, reducing_gap=3.0)


def _canvas_size(width: int, height: int) -> tuple[int, int]:
    """The smallest 3:4 (width:height) canvas that holds a width x height picture."""
    target_ratio = IMAGE_WIDTH / IMAGE_HEIGHT
    if width / height > target_ratio:
        return (width, max(height, round(width / target_ratio)))
    return (max(width, round(height * target_ratio)), height)


def _shrink(image: Image.Image, scale: float) -> Image.Image:
    """Scale by about `scale` < 1; a side that would be under a pixel stays 1 pixel, faded to white
    by the fraction it covers, so a hairline strip keeps its (tiny) weight on the canvas."""
    short_side = min(image.size) * scale
    if short_side >= 1:
        # Scale down a little more so the short side is a whole number of pixels: rounding it
        # would change a narrow strip's width (15.4 -> 15 px is 3%) and so its darkness.
        scale *= math.floor(short_side) / short_side
    exact_w, exact_h = image.width * scale, image.height * scale
    size = (max(1, round(exact_w)), max(1, round(exact_h)))
    image = image.resize(size, Image.Resampling.BOX)
    coverage = min(1.0, exact_w) * min(1.0, exact_h)
    if coverage < 1.0:
        image = Image.blend(Image.new("RGB", size, _BACKGROUND), image, coverage)
    return image


def image_grid(images: np.ndarray, columns: int, scale: int = 1, gap: int = 2) -> Image.Image:
    """uint8 (N, H, W, 3) images as one white-gapped grid picture, each enlarged `scale` times."""
    images = np.asarray(images, np.uint8)
    n, height, width = images.shape[:3]
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    cell_w, cell_h = width * scale, height * scale
    grid = Image.new("RGB", (columns * cell_w + (columns - 1) * gap, rows * cell_h + (rows - 1) * gap), _BACKGROUND)
    for index, pixels in enumerate(images):
        tile = Image.fromarray(pixels).resize((cell_w, cell_h), Image.Resampling.NEAREST)
        grid.paste(tile, ((index % columns) * (cell_w + gap), (index // columns) * (cell_h + gap)))
    return grid
