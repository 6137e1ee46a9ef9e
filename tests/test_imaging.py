"""fashiongen.imaging.load_image: every mode, size and broken file a user may upload."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import jpeg_bytes
from PIL import Image

from fashiongen import imaging
from fashiongen.imaging import ImageDecodeError, ImageTooLargeError, load_image


def encode(image: Image.Image, fmt: str, **args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **args)
    return buffer.getvalue()


def pillow_reference(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_fast_jpeg_path_is_pixel_identical_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    colour = jpeg_bytes(rng.integers(0, 256, (80, 60, 3), dtype=np.uint8))
    grey = jpeg_bytes(rng.integers(0, 256, (80, 60), dtype=np.uint8))
    calls = []
    real = imaging.simplejpeg.decode_jpeg
    monkeypatch.setattr(imaging.simplejpeg, "decode_jpeg", lambda *a, **k: calls.append(1) or real(*a, **k))
    for data in (colour, grey):
        np.testing.assert_array_equal(load_image(data), pillow_reference(data))
    assert len(calls) == 2  # both went through the fast path


def test_real_photos_fast_path_equals_pillow(shared_data: Path) -> None:
    files = sorted((shared_data / "images").glob("*.jpg"))[::400]
    for path in files:
        data = path.read_bytes()
        np.testing.assert_array_equal(load_image(data), pillow_reference(data), err_msg=str(path))


def test_inputs_by_path_bytes_and_file_object(tmp_path: Path) -> None:
    data = jpeg_bytes(np.full((80, 60, 3), 100, np.uint8))
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    expected = load_image(data)
    np.testing.assert_array_equal(load_image(path), expected)
    np.testing.assert_array_equal(load_image(str(path)), expected)
    np.testing.assert_array_equal(load_image(io.BytesIO(data)), expected)


def test_transparency_becomes_white() -> None:
    rgba = np.zeros((80, 60, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent ...
    rgba[20:40, 20:40, 3] = 255  # ... except an opaque red square
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[30, 30].tolist() == [255, 0, 0]
    palette = Image.fromarray(rgba, "RGBA").convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))
    assert load_image(encode(palette, "PNG", transparency=palette.getpixel((0, 0))))[0, 0].tolist() == [255, 255, 255]
    grey_alpha = Image.fromarray(np.stack([np.full((80, 60), 30, np.uint8), np.zeros((80, 60), np.uint8)], -1), "LA")
    assert load_image(encode(grey_alpha, "PNG"))[5, 5].tolist() == [255, 255, 255]


def test_greyscale_cmyk_palette_and_webp() -> None:
    grey = Image.fromarray(np.full((80, 60), 77, np.uint8), "L")
    assert load_image(encode(grey, "PNG"))[10, 10].tolist() == [77, 77, 77]
    cmyk = Image.new("CMYK", (60, 80), (0, 255, 255, 0))  # pure red in CMYK
    red = load_image(encode(cmyk, "JPEG", quality=95))[40, 30]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    palette = Image.new("RGB", (60, 80), (0, 0, 255)).convert("P")
    assert load_image(encode(palette, "GIF"))[40, 30].tolist() == [0, 0, 255]
    webp = load_image(encode(Image.new("RGB", (60, 80), (0, 200, 0)), "WEBP", lossless=True))
    assert webp[40, 30].tolist() == [0, 200, 0]


def test_sixteen_bit_png_keeps_its_tones() -> None:
    ramp = np.tile(np.linspace(0, 65535, 60).astype(np.uint16), (80, 1))
    out = load_image(encode(Image.fromarray(ramp), "PNG"))
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255  # not clipped to all-white
    assert 100 < out[0, 30, 0] < 155


def test_exif_orientation_is_applied() -> None:
    # stored landscape 80x60 with a red top-left corner; orientation 6 = rotate 90 degrees clockwise
    pixels = np.full((60, 80, 3), 255, np.uint8)
    pixels[:10, :10] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = jpeg_bytes(pixels, exif=exif.tobytes())
    out = load_image(data)
    assert out.shape == (80, 60, 3)  # portrait after rotation, no padding needed
    assert out[3, -3, 0] > 200 and out[3, -3, 1] < 80  # the red corner moved to the top right
    assert out[3, 3].min() > 200


@pytest.mark.parametrize("size", [(600, 800), (61, 80), (30, 40), (200, 100), (50, 300)])
def test_any_size_becomes_60_by_80(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, (0, 0, 0))
    out = load_image(encode(image, "PNG"))
    assert out.shape == (80, 60, 3) and out.dtype == np.uint8
    assert out[40, 30].tolist() == [0, 0, 0]  # the picture is centred ...
    width, height = size
    if width / height > 0.75 + 0.05:
        assert out[0, 30].tolist() == [255, 255, 255]  # ... wide ones padded white above and below
    elif width / height < 0.75 - 0.05:
        assert out[40, 0].tolist() == [255, 255, 255]  # ... tall ones padded at the sides


def test_huge_jpeg_is_decoded_small() -> None:
    big = Image.new("L", (10000, 10000), 128)
    out = load_image(encode(big, "JPEG", quality=50))
    assert out.shape == (80, 60, 3) and abs(int(out[40, 30, 0]) - 128) <= 2


def test_too_many_pixels_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.new("RGB", (200, 200)), "PNG")
    monkeypatch.setattr(imaging, "MAX_PIXELS", 200 * 200 - 1)
    with pytest.raises(ImageTooLargeError, match="200x200 pixels"):
        load_image(data)


def test_too_big_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(imaging, "MAX_FILE_BYTES", 1000)
    data = encode(Image.new("RGB", (60, 80)), "BMP")
    path = tmp_path / "big.bmp"
    path.write_bytes(data)
    for source in (data, path, io.BytesIO(data)):
        with pytest.raises(ImageTooLargeError, match="MB; images up to"):
            load_image(source)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, I am a text file\n" * 10, "not an image format"),
        (jpeg_bytes(np.zeros((80, 60, 3), np.uint8))[:300], "corrupt or truncated"),
        (encode(Image.new("RGB", (300, 400), (9, 9, 9)), "PNG")[:-40], "corrupt or truncated"),
    ],
)
def test_broken_input_gives_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        load_image(data, name="upload.jpg")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="cannot be read"):
        load_image(tmp_path / "nope.jpg")


# --- hostile input: work bounded by the output, clear errors -------------------------------------------


def padded_reference(image: Image.Image) -> np.ndarray:
    """The exact preprocessing: white 3:4 canvas at full size, then one Lanczos resize."""
    width, height = image.size
    if width * 4 > height * 3:  # wider than 3:4: white above and below
        canvas_size = (width, max(height, round(width * 4 / 3)))
    else:
        canvas_size = (round(height * 3 / 4), height)
    canvas = Image.new("RGB", canvas_size, (255, 255, 255))
    canvas.paste(image, ((canvas.width - width) // 2, (canvas.height - height) // 2))
    return np.asarray(canvas.resize((60, 80), Image.Resampling.LANCZOS, reducing_gap=3.0))


def textured(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    grey = (127 + 60 * np.sin(x / width * 6) + 60 * np.cos(y / height * 5)).astype(np.uint8)
    grey[height // 3 : height // 2, width // 4 : width // 2] = 0  # a sharp-edged block
    return Image.fromarray(np.stack([grey, grey[::-1], 255 - grey], -1))


def test_small_canvas_keeps_the_exact_padding() -> None:
    image = textured(400, 150)  # pads to 400x533, under the canvas limit
    np.testing.assert_array_equal(load_image(encode(image, "PNG")), padded_reference(image))


def test_big_canvas_is_shrunk_first_with_nearly_the_same_result() -> None:
    image = textured(3000, 500)  # pads to 3000x4000 = 12 MP, over the canvas limit (4 MP)
    difference = np.abs(load_image(encode(image, "PNG")).astype(int) - padded_reference(image))
    assert difference.mean() < 0.5 and difference.max() <= 8


# Loads each path given on the command line under an address-space cap of 256 MB above what the
# interpreter already uses, and prints one JSON line per path: the output pixels or the error.
_CAPPED_LOADER = """
import io, json, resource, sys
from PIL import Image
from fashiongen.imaging import ImageError, load_image

def used_bytes():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))

warm_up = io.BytesIO()
Image.new("RGB", (200, 100)).save(warm_up, "PNG")
load_image(warm_up.getvalue())  # every code path's libraries loaded before the cap
resource.setrlimit(resource.RLIMIT_AS, (used_bytes() + 256 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
for path in sys.argv[1:]:
    try:
        out = load_image(path)
        print(json.dumps({"pixels": out.tolist()}))
    except ImageError as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
"""


def load_capped(paths: list[Path]) -> list[dict]:
    """load_image on each path in a child process with capped memory: no test can eat the machine."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc to measure the memory in use")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CAPPED_LOADER, *map(str, paths)],
            cwd=Path(__file__).resolve().parents[1],  # this checkout's fashiongen, as pytest imports it
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("load_image did not return within 60 s (a read that never ends?)")
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_extreme_aspect_ratios_load_in_bounded_memory(tmp_path: Path) -> None:
    # Padded to 3:4 at full size these need 22 GB, 22 GB and 2 GB of canvas; a 274-byte file suffices.
    sizes = [(1, 100_000), (100_000, 1), (200, 30_000)]
    paths = []
    for width, height in sizes:
        paths.append(tmp_path / f"{width}x{height}.png")
        paths[-1].write_bytes(encode(Image.new("L", (width, height), 0), "PNG"))
    results = load_capped(paths)
    assert all("pixels" in result for result in results), [result.get("message") for result in results]
    hairline, flat_line, strip = (np.array(result["pixels"]) for result in results)
    # A 1-pixel line covers 1/75000 of its canvas: nothing of it survives at 60x80.
    assert hairline.min() >= 250 and flat_line.min() >= 250
    # The same black strip at a tenth of the size has the same geometry, so the same result.
    expected = padded_reference(Image.new("RGB", (20, 3_000), 0))
    assert strip.shape == (80, 60, 3) and np.abs(strip - expected).max() <= 8


def test_devices_and_pipes_are_refused_without_reading(tmp_path: Path) -> None:
    # /dev/zero claims 0 bytes and never ends; opening a pipe with no writer blocks forever.
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs named pipes (POSIX)")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    paths = [fifo] + [Path("/dev/zero")] * Path("/dev/zero").exists()
    for result in load_capped(paths):
        assert result.get("error") == "ImageDecodeError" and "not a regular file" in result["message"], result


def test_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="is a folder"):
        load_image(tmp_path)


def png_claiming(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of zero rows: a few hundred KB that decode to width x height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + -(-width // 8))  # filter byte + packed bits
    packer = zlib.compressobj(1)
    thousands, rest = divmod(height, 1000)
    idat = b"".join([packer.compress(row * 1000) for _ in range(thousands)] + [packer.compress(row * rest)])
    idat += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_gets_our_size_message() -> None:
    # 900 MP: Pillow itself refuses it in Image.open (over 2 x Image.MAX_IMAGE_PIXELS), in its own words.
    data = png_claiming(30_000, 30_000)
    with pytest.raises(ImageTooLargeError, match=r"is 900 MP; pictures up to 100 MP are accepted"):
        load_image(data, name="bomb.png")
