"""A set of images that are NOT catalog product photos, to measure the "not a product photo" detector.

Every picture is one that a package ships (scikit-image's and scikit-learn's sample images,
matplotlib's sample data) or one drawn on the spot with Pillow or matplotlib from a seeded random
generator, so the set needs no download and is the same for a seed on every machine with the same
package versions. Each picture is made at its natural size, encoded as PNG and read back with
`fashiongen.imaging.load_image`, so it reaches the model exactly as an upload does (padded to 3:4
with white, resized to 60x80). Seven kinds, at least 30 of each; docs/labeler.md ("The non-product
set") says how each is built and how many there are.

scikit-image and matplotlib are imported inside the functions: importing the library stays light.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from fashiongen.imaging import IMAGE_SHAPE, load_image

KINDS = ("natural photo", "drawing", "document", "chart", "screenshot", "noise", "crop")

# skimage.data pictures that ship inside the wheel (the others need pooch and a download).
# cat() is chelsea(), so it appears once.
_SKIMAGE_PHOTOS = (
    "astronaut", "camera", "chelsea", "coffee", "coins", "moon", "rocket", "brick", "grass", "gravel",
    "cell", "clock", "retina", "microaneurysms", "hubble_deep_field", "immunohistochemistry",
)
_SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
# matplotlib's sample_data also holds Minduka_Present_Blue_Pack.png, a product photo: never used.
_MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)
_LFW_FACES = 12  # lfw_subset: 25x25 grey faces (its first 100) ...
_LFW_PATCHES = 8  # ... and non-face patches of photos (its last 100), picked by the seed
_CROPS_PER_PHOTO = 2
_CROPS_PER_DOCUMENT = 1

_DOCUMENTS = 40  # rendered pages, besides skimage's page and text
_CHARTS = 42
_PIL_SCREENSHOTS = 36
_FIGURE_SCREENSHOTS = 10  # matplotlib figures with several panels
_PIL_DRAWINGS = 24
_FIGURE_DRAWINGS = 8
_NOISE_EACH = 6  # per noise type

# An empty product photo is (near) white; no image of this set may look like that.
_BLANK_MEAN = 250.0
_BLANK_STD = 5.0
_ATTEMPTS = 10  # redraws of a random picture that came out blank

_WORDS = tuple(
    "the of and to in is for on with as by at from that this be are was it or an report total order "
    "invoice customer account date amount item price quantity shipping address summary table figure "
    "results method data value model section page note review policy terms service payment balance "
    "meeting agenda project status update budget quarter annual revenue cost growth team plan risk "
    "analysis sample test system user request response error version release build deploy server".split()
)


@dataclass
class NonProductSet:
    """Non-product images as the model sees uploads, with each one's kind and a unique name."""

    images: np.ndarray  # uint8 (N, 80, 60, 3)
    kinds: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Images per kind, in KINDS order."""
        tally = Counter(self.kinds)
        return {kind: tally[kind] for kind in KINDS if tally[kind]}

    def __len__(self) -> int:
        return len(self.names)


def non_product_images(seed: int = 0) -> NonProductSet:
    """About 310 non-product images (7 kinds, at least 30 each), the same for the same `seed` (non-negative)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}.")
    import matplotlib.style

    collector = _Collector()
    # One generator per kind: changing how one kind is drawn leaves the others as they were.
    rngs = {kind: np.random.default_rng([int(seed), index]) for index, kind in enumerate(KINDS)}
    fonts = _Fonts()
    _add_photos_and_crops(collector, rngs["natural photo"], rngs["crop"])
    _add_documents(collector, rngs["document"], rngs["crop"], fonts)
    _add_noise(collector, rngs["noise"])
    _add_pil_drawings(collector, rngs["drawing"])
    _add_pil_screenshots(collector, rngs["screenshot"], fonts)
    # matplotlib's defaults, not the user's matplotlibrc: the same seed draws the same charts anywhere.
    with matplotlib.style.context("default"):
        _add_bundled_drawings(collector, rngs["drawing"])
        _add_figure_drawings(collector, rngs["drawing"])
        _add_charts(collector, rngs["chart"])
        _add_dashboards(collector, rngs["screenshot"])
    return collector.result()


Picture = np.ndarray | Image.Image  # grey, RGB or RGBA pixels, uint8, bool or floats in [0, 1]


def upload_pixels(picture: Picture) -> np.ndarray:
    """A picture at its natural size as the model sees it after an upload: PNG bytes, then `load_image`."""
    return load_image(png_bytes(picture), name="a non-product picture")


def png_bytes(picture: Picture) -> bytes:
    """The picture as a PNG file: grey and boolean pictures become RGB; RGBA keeps its transparency,
    which `load_image` puts on white as it does for an upload."""
    if isinstance(picture, np.ndarray):
        array = picture
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif array.dtype != np.uint8:
            array = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)  # floats in [0, 1]
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        picture = Image.fromarray(array)
    if picture.mode not in ("RGB", "RGBA"):
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=0)  # lossless at any level; 0 is the fastest
    return buffer.getvalue()


def is_blank(image: np.ndarray) -> bool:
    """Whether a model input is (near) uniform white, which is what an empty product photo looks like."""
    return float(image.mean()) >= _BLANK_MEAN and float(image.std()) <= _BLANK_STD


class _Collector:
    def __init__(self) -> None:
        self._entries: dict[str, list[tuple[str, np.ndarray]]] = {kind: [] for kind in KINDS}
        self._names: set[str] = set()

    def add(self, kind: str, name: str, picture: Picture | Callable[[], Picture]) -> None:
        """Keep a picture as an upload. Given a function that draws one at random, draw again while the
        result is blank white; a given picture that is blank is a bug."""
        if name in self._names:
            raise ValueError(f"two non-product images are named {name!r}")
        for _ in range(_ATTEMPTS if callable(picture) else 1):
            image = upload_pixels(picture() if callable(picture) else picture)
            if not is_blank(image):
                break
        else:
            raise RuntimeError(f"{name!r} came out blank white")
        self._names.add(name)
        self._entries[kind].append((name, image))

    def result(self) -> NonProductSet:
        kinds, names, images = [], [], []
        for kind in KINDS:
            for name, image in self._entries[kind]:
                kinds.append(kind)
                names.append(name)
                images.append(image)
        stacked = np.stack(images) if images else np.zeros((0, *IMAGE_SHAPE), np.uint8)
        return NonProductSet(images=stacked, kinds=kinds, names=names)


class _Fonts:
    """matplotlib's bundled DejaVu fonts for Pillow, so text looks the same on every machine."""

    def __init__(self) -> None:
        import matplotlib

        self._folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        self._cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

    def get(self, size: int, style: str = "") -> ImageFont.FreeTypeFont:
        file = {"": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf",
                "serif": "DejaVuSerif.ttf"}[style]
        key = (file, max(6, int(size)))
        if key not in self._cache:
            self._cache[key] = ImageFont.truetype(str(self._folder / file), key[1])
        return self._cache[key]


def _sample_data(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / name


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(value) for value in rng.integers(low, high, 3))


def _dark_enough(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random colour clearly away from white (mean under 220)."""
    while True:
        colour = _colour(rng)
        if sum(colour) / 3 < 220:
            return colour


def _words(rng: np.random.Generator, count: int) -> str:
    return " ".join(rng.choice(_WORDS, size=count))


def _random_crop(rng: np.random.Generator, picture: np.ndarray) -> np.ndarray:
    """A crop covering 5-60% of the picture's area, with a width:height ratio between 1:2 and 2:1."""
    height, width = picture.shape[:2]
    area = rng.uniform(0.05, 0.6) * width * height
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    crop_w = int(np.clip(round(np.sqrt(area * aspect)), 8, width))
    crop_h = int(np.clip(round(np.sqrt(area / aspect)), 8, height))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return picture[top:top + crop_h, left:left + crop_w].copy()


def _add_crops(collector: _Collector, rng: np.random.Generator, picture: np.ndarray, name: str, count: int) -> None:
    for number in range(1, count + 1):
        collector.add("crop", f"{name} crop {number}", partial(_random_crop, rng, picture))


# ---------------------------------------------------------------- natural photos (and their crops)


def _add_photos_and_crops(collector: _Collector, rng: np.random.Generator, crop_rng: np.random.Generator) -> None:
    import skimage.data

    # One source picture at a time, dropped once its photo and crops are made: memory stays bounded.
    sources: list[tuple[str, Callable[[], np.ndarray]]] = []
    sources += [(f"skimage {name}", getattr(skimage.data, name)) for name in _SKIMAGE_PHOTOS]
    sources.append(("skimage motorcycle_left", lambda: skimage.data.stereo_motorcycle()[0]))
    sources += [(f"sklearn {Path(file).stem}", partial(_sklearn_photo, file)) for file in _SKLEARN_PHOTOS]
    sources += [(f"matplotlib {Path(n).stem}", partial(_rgb_file, _sample_data(n))) for n in _MATPLOTLIB_PHOTOS]
    for name, load in sources:
        picture = load()
        collector.add("natural photo", name, picture)
        _add_crops(collector, crop_rng, picture, name, _CROPS_PER_PHOTO)
    lfw = skimage.data.lfw_subset()  # (200, 25, 25) floats in [0, 1]: 100 faces, then 100 other patches
    for label, first, count in (("face", 0, _LFW_FACES), ("patch", 100, _LFW_PATCHES)):
        for index in sorted(rng.choice(100, size=count, replace=False)):
            collector.add("natural photo", f"skimage lfw_subset {label} {index}", lfw[first + index])


def _sklearn_photo(file: str) -> np.ndarray:
    """A JPEG that sklearn.datasets.load_sample_images reads, found without importing scikit-learn (seconds)."""
    import importlib.util

    (package,) = importlib.util.find_spec("sklearn").submodule_search_locations
    return _rgb_file(Path(package) / "datasets" / "images" / file)


def _rgb_file(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"))


# ---------------------------------------------------------------- documents


def _add_documents(
    collector: _Collector, rng: np.random.Generator, crop_rng: np.random.Generator, fonts: _Fonts
) -> None:
    import skimage.data

    for name in ("page", "text"):
        picture = getattr(skimage.data, name)()
        collector.add("document", f"skimage {name}", picture)
        _add_crops(collector, crop_rng, picture, f"skimage {name}", _CROPS_PER_DOCUMENT)
    layouts = ("letter", "table", "receipt", "slide", "form")
    for number in range(1, _DOCUMENTS + 1):
        layout = layouts[(number - 1) % len(layouts)]
        name = f"rendered {layout} {number}"
        page = np.asarray(_document(rng, fonts, layout))
        collector.add("document", name, page)
        if number % 3 == 1:  # a crop of every third page: bits of text as a user might cut them out
            _add_crops(collector, crop_rng, page, name, _CROPS_PER_DOCUMENT)


def _document(rng: np.random.Generator, fonts: _Fonts, layout: str) -> Image.Image:
    sizes = {"letter": [(496, 702), (612, 792), (420, 594)], "table": [(496, 702), (702, 496)],
             "receipt": [(240, 620), (280, 760)], "slide": [(640, 360), (800, 450)], "form": [(500, 700), (612, 792)]}
    width, height = sizes[layout][int(rng.integers(len(sizes[layout])))]
    paper = (255, 255, 255) if rng.random() < 0.6 else _colour(rng, 225, 256)
    ink = _colour(rng, 0, 70)
    page = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(page)
    margin = int(width * rng.uniform(0.06, 0.12))
    body = fonts.get(rng.integers(11, 16), "serif" if rng.random() < 0.4 else "")
    line = body.size + int(rng.integers(3, 8))
    y = margin
    if layout == "slide":
        heading = fonts.get(rng.integers(26, 40), "bold")
        draw.rectangle((0, 0, width, int(height * 0.22)), fill=_dark_enough(rng))
        draw.text((margin, int(height * 0.06)), _words(rng, 3).title(), font=heading, fill=(255, 255, 255))
        y = int(height * 0.3)
        for _ in range(int(rng.integers(3, 6))):
            draw.ellipse((margin, y + 6, margin + 8, y + 14), fill=ink)
            draw.text((margin + 18, y), _words(rng, int(rng.integers(3, 8))), font=fonts.get(20), fill=ink)
            y += 36
        return page
    if layout == "receipt":
        mono = fonts.get(rng.integers(11, 14), "mono")
        draw.text((margin, y), _words(rng, 2).upper(), font=fonts.get(18, "bold"), fill=ink)
        y += 40
        while y < height - 3 * margin:
            item = _words(rng, int(rng.integers(1, 3)))[:18]
            draw.text((margin, y), f"{item:<18}{rng.uniform(1, 99):>7.2f}", font=mono, fill=ink)
            y += mono.size + 6
        draw.line((margin, y, width - margin, y), fill=ink, width=2)
        draw.text((margin, y + 8), f"{'TOTAL':<18}{rng.uniform(50, 999):>7.2f}", font=mono, fill=ink)
        return page
    # letter, table and form pages start with a heading
    draw.text((margin, y), _words(rng, int(rng.integers(2, 5))).title(), font=fonts.get(body.size + 8, "bold"),
              fill=ink)
    y += body.size + 8 + 2 * line
    while y < height - margin - line:
        block = rng.random()
        if layout == "table" or (layout == "letter" and block < 0.15):
            y = _table(draw, rng, body, ink, margin, y, width - margin, height - margin)
        elif layout == "form":
            label_w = int((width - 2 * margin) * 0.3)
            draw.text((margin, y + 4), _words(rng, 2).title() + ":", font=body, fill=ink)
            draw.rectangle((margin + label_w, y, width - margin, y + line + 6), outline=ink, width=1)
            y += line + 16
        else:  # a paragraph; its last line is shorter
            lines = int(rng.integers(3, 9))
            chars_per_line = max(10, int((width - 2 * margin) / (body.size * 0.55)))
            for index in range(lines):
                text = _words(rng, 40)[: chars_per_line if index < lines - 1 else int(rng.integers(5, chars_per_line))]
                draw.text((margin, y), text, font=body, fill=ink)
                y += line
                if y > height - margin - line:
                    break
            y += line
            if rng.random() < 0.25:
                draw.text((margin, y), _words(rng, 3).title(), font=fonts.get(body.size + 3, "bold"), fill=ink)
                y += 2 * line
    return page


def _table(draw: ImageDraw.ImageDraw, rng: np.random.Generator, font: ImageFont.FreeTypeFont,
           ink: tuple[int, int, int], left: int, top: int, right: int, bottom: int) -> int:
    """A ruled table of words and numbers from `top`; returns the y below it."""
    columns = int(rng.integers(2, 6))
    rows = int(rng.integers(3, 12))
    row_h = font.size + 10
    col_w = (right - left) / columns
    header = _colour(rng, 180, 235) if rng.random() < 0.5 else None
    for row in range(rows):
        y = top + row * row_h
        if y + row_h > bottom:
            break
        if row == 0 and header:
            draw.rectangle((left, y, right, y + row_h), fill=header)
        for column in range(columns):
            x = left + column * col_w
            text = _words(rng, 1) if column == 0 or row == 0 else f"{rng.uniform(0, 1000):.1f}"
            draw.text((x + 4, y + 4), text, font=font, fill=ink)
        draw.line((left, y + row_h, right, y + row_h), fill=ink, width=1)
    return top + (rows + 2) * row_h


# ---------------------------------------------------------------- noise


def _add_noise(collector: _Collector, rng: np.random.Generator) -> None:
    makers = {
        "uniform": lambda rng, size: rng.integers(0, 256, (*size, 3), dtype=np.uint8),
        "gaussian": _gaussian_noise,
        "salt-and-pepper": _salt_and_pepper,
        "smoothed": _smoothed_noise,
        "linear gradient": _linear_gradient,
        "radial gradient": _radial_gradient,
        "solid colour": lambda rng, size: np.full((*size, 3), _dark_enough(rng), np.uint8),  # never white
    }
    for kind, make in makers.items():
        for number in range(1, _NOISE_EACH + 1):
            # tall, wide and square pictures, from thumbnails to photo size
            size = (int(rng.integers(40, 700)), int(rng.integers(40, 700)))  # (height, width)
            collector.add("noise", f"{kind} noise {number}", partial(make, rng, size))


def _gaussian_noise(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    grey = rng.random() < 0.3
    noise = rng.normal(rng.uniform(60, 190), rng.uniform(15, 80), (*size, 1 if grey else 3))
    return np.repeat(np.clip(noise, 0, 255).astype(np.uint8), 3 if grey else 1, axis=2)


def _salt_and_pepper(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    picture = np.full((*size, 3), _dark_enough(rng), np.uint8)
    hits = rng.random(size)
    amount = rng.uniform(0.05, 0.4)
    picture[hits < amount / 2] = 0
    picture[(hits >= amount / 2) & (hits < amount)] = 255
    return picture


def _smoothed_noise(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    noise = Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    blurred = np.asarray(noise.filter(ImageFilter.GaussianBlur(rng.uniform(2, 12))), np.float64)
    # blurring flattens it towards grey: stretch the contrast back to the full range
    low, high = blurred.min(), blurred.max()
    return np.rint((blurred - low) * (255.0 / max(high - low, 1.0))).astype(np.uint8)


def _blend(rng: np.random.Generator, weight: np.ndarray) -> np.ndarray:
    """Two random colours (one clearly not white) mixed by `weight` in [0, 1]."""
    first, second = np.array(_dark_enough(rng), np.float64), np.array(_colour(rng), np.float64)
    return np.rint(first + (second - first) * weight[:, :, None]).astype(np.uint8)


def _linear_gradient(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.mgrid[0:size[0], 0:size[1]]
    along = rows * np.sin(angle) + cols * np.cos(angle)
    return _blend(rng, (along - along.min()) / max(np.ptp(along), 1.0))


def _radial_gradient(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    centre = rng.uniform(0, 1, 2) * size
    rows, cols = np.mgrid[0:size[0], 0:size[1]]
    distance = np.hypot(rows - centre[0], cols - centre[1])
    return _blend(rng, distance / max(distance.max(), 1.0))


# ---------------------------------------------------------------- drawings


def _add_bundled_drawings(collector: _Collector, rng: np.random.Generator) -> None:
    import skimage.data

    # logo and logo2 are RGBA: load_image puts them on white
    for name in ("logo", "checkerboard", "colorwheel", "horse", "shepp_logan_phantom"):
        collector.add("drawing", f"skimage {name}", getattr(skimage.data, name)())
    with Image.open(_sample_data("logo2.png")) as logo:
        collector.add("drawing", "matplotlib logo2", logo.copy())
    for number in range(1, 4):
        blobs = skimage.data.binary_blobs(
            length=256, blob_size_fraction=float(rng.uniform(0.04, 0.2)),
            volume_fraction=float(rng.uniform(0.2, 0.6)), rng=int(rng.integers(2**31)),
        )
        collector.add("drawing", f"skimage binary_blobs {number}", blobs)


def _add_pil_drawings(collector: _Collector, rng: np.random.Generator) -> None:
    for number in range(1, _PIL_DRAWINGS + 1):
        collector.add("drawing", f"random shapes {number}", partial(_shapes, rng))


def _shapes(rng: np.random.Generator) -> Image.Image:
    """Random ellipses, rectangles, polygons, lines and arcs on white, a pale colour or a dark one."""
    width, height = int(rng.integers(120, 600)), int(rng.integers(120, 600))
    background = rng.choice(["white", "pale", "dark"], p=[0.5, 0.3, 0.2])
    fill_bg = {"white": (255, 255, 255), "pale": _colour(rng, 200, 256), "dark": _colour(rng, 0, 80)}[background]
    picture = Image.new("RGB", (width, height), fill_bg)
    draw = ImageDraw.Draw(picture)
    stroke = max(2, min(width, height) // 40)
    for _ in range(int(rng.integers(4, 16))):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        box = (x0, y0, max(x1, x0 + 4), max(y1, y0 + 4))
        colour = _dark_enough(rng)
        filled = rng.random() < 0.6
        shape = rng.choice(["ellipse", "rectangle", "polygon", "line", "arc"])
        if shape == "ellipse":
            draw.ellipse(box, fill=colour if filled else None, outline=colour, width=stroke)
        elif shape == "rectangle":
            draw.rectangle(box, fill=colour if filled else None, outline=colour, width=stroke)
        elif shape == "polygon":
            points = [(int(x), int(y)) for x, y in zip(rng.integers(0, width, 6), rng.integers(0, height, 6))]
            points = points[: int(rng.integers(3, 7))]
            draw.polygon(points, fill=colour if filled else None, outline=colour, width=stroke)
        elif shape == "line":
            draw.line(box, fill=colour, width=stroke * int(rng.integers(1, 4)))
        else:
            draw.arc(box, int(rng.integers(0, 360)), int(rng.integers(0, 360)), fill=colour, width=stroke * 2)
    return picture


def _add_figure_drawings(collector: _Collector, rng: np.random.Generator) -> None:
    """Curves and patches drawn with matplotlib, axes hidden: line art rather than charts."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, RegularPolygon

    for number in range(1, _FIGURE_DRAWINGS + 1):
        figure = Figure(figsize=(rng.uniform(3, 6), rng.uniform(3, 6)), dpi=60)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.set_axis_off()
        axes.set_aspect("equal")
        if number % 2:
            # a Lissajous / rose curve
            t = np.linspace(0, 2 * np.pi, 2000)
            a, b = rng.integers(1, 8, 2)
            axes.plot(np.sin(a * t + rng.uniform(0, np.pi)), np.sin(b * t), color=np.array(_dark_enough(rng)) / 255,
                      linewidth=rng.uniform(1.5, 4))
            kind = "curve"
        else:
            for _ in range(int(rng.integers(5, 20))):
                colour = np.array(_dark_enough(rng)) / 255
                centre = rng.uniform(-1, 1, 2)
                if rng.random() < 0.5:
                    patch = Circle(centre, rng.uniform(0.05, 0.4), color=colour, alpha=rng.uniform(0.4, 1))
                else:
                    patch = RegularPolygon(centre, int(rng.integers(3, 9)), radius=rng.uniform(0.05, 0.4),
                                           color=colour, alpha=rng.uniform(0.4, 1))
                axes.add_patch(patch)
            axes.set_xlim(-1.3, 1.3)
            axes.set_ylim(-1.3, 1.3)
            kind = "patches"
        picture = _render(figure)
        collector.add("drawing", f"matplotlib {kind} {number}", picture)


# ---------------------------------------------------------------- charts


def _render(figure) -> np.ndarray:
    """A matplotlib Figure drawn by the Agg backend, as RGB pixels at its natural size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


class _ChartData:
    """matplotlib's bundled sample data, read once per set."""

    def __init__(self) -> None:
        import pandas as pd

        self.stocks = pd.read_csv(_sample_data("Stocks.csv"), comment="#", parse_dates=["Date"]).set_index("Date")
        self.goog = np.load(_sample_data("goog.npz"))["price_data"]
        self.msft = pd.read_csv(_sample_data("msft.csv"))
        self.elevation = np.load(_sample_data("jacksboro_fault_dem.npz"))["elevation"]
        self.topography = np.load(_sample_data("topobathy.npz"))["topo"]


_CHART_TYPES = ("line", "bar", "scatter", "pie", "histogram", "heatmap")


def _add_charts(collector: _Collector, rng: np.random.Generator) -> None:
    from matplotlib.figure import Figure

    data = _ChartData()
    for number in range(1, _CHARTS + 1):
        chart = _CHART_TYPES[(number - 1) % len(_CHART_TYPES)]
        bundled = (number - 1) // len(_CHART_TYPES) % 2 == 0  # alternate rounds: sample data, random data
        size = [(4, 3), (5, 3.5), (6, 4), (3.5, 4.5), (4, 4), (6, 3)][int(rng.integers(6))]
        figure = Figure(figsize=size, dpi=int(rng.integers(60, 90)))
        axes = figure.add_subplot()
        source = _chart(axes, rng, chart, data if bundled else None)
        if rng.random() < 0.7:
            axes.set_title(_words(rng, int(rng.integers(2, 5))).title())
        # fixed margins: tight_layout would lay out every tick twice and triple the time
        figure.subplots_adjust(left=0.16, right=0.95, bottom=0.15, top=0.88)
        picture = _render(figure)
        collector.add("chart", f"matplotlib {chart} chart {number} ({source})", picture)


def _chart(axes, rng: np.random.Generator, chart: str, data: _ChartData | None) -> str:
    """Draw one chart on `axes` from the bundled data (when given) or random data; returns its source."""
    if chart == "line":
        if data is not None:
            choice = int(rng.integers(3))
            if choice == 0:
                tickers = rng.choice(data.stocks.columns, size=int(rng.integers(1, 5)), replace=False)
                for ticker in tickers:
                    axes.plot(data.stocks.index, data.stocks[ticker], label=ticker)
                axes.legend(fontsize="small")
                return "Stocks.csv"
            if choice == 1:
                axes.plot(data.goog["date"], data.goog["adj_close"])
                axes.set_ylabel("GOOG")
                return "goog.npz"
            axes.plot(np.arange(len(data.msft))[::-1], data.msft["Close"], marker="o", markersize=3)
            return "msft.csv"
        for _ in range(int(rng.integers(1, 4))):
            axes.plot(np.cumsum(rng.normal(0, 1, int(rng.integers(20, 300)))))
        axes.grid(rng.random() < 0.5)
        return "random walks"
    if chart == "bar":
        if data is not None:
            years = data.goog["date"].astype("datetime64[Y]")
            labels = np.unique(years)
            axes.bar([str(year) for year in labels], [data.goog["volume"][years == year].mean() for year in labels],
                     color=np.array(_dark_enough(rng)) / 255)
            return "goog.npz volume"
        count = int(rng.integers(3, 10))
        heights = rng.uniform(1, 10, count)
        if rng.random() < 0.5:
            axes.barh([_words(rng, 1) + str(i) for i in range(count)], heights)
        else:
            axes.bar(np.arange(count) - 0.2, heights, width=0.4)
            axes.bar(np.arange(count) + 0.2, rng.uniform(1, 10, count), width=0.4)
        return "random"
    if chart == "scatter":
        if data is not None:
            returns = data.stocks.pct_change().dropna()
            first, second = rng.choice(returns.columns, size=2, replace=False)
            axes.scatter(returns[first], returns[second], s=8)
            axes.set_xlabel(first)
            axes.set_ylabel(second)
            return "Stocks.csv returns"
        for _ in range(int(rng.integers(1, 4))):
            centre = rng.normal(0, 3, 2)
            points = rng.normal(centre, rng.uniform(0.3, 1.5), (int(rng.integers(20, 200)), 2))
            axes.scatter(points[:, 0], points[:, 1], s=rng.uniform(5, 40), alpha=0.7)
        return "random clusters"
    if chart == "pie":
        count = int(rng.integers(3, 8))
        if data is not None:
            last = data.stocks.dropna().iloc[-1]
            shares = last.nlargest(count)
            axes.pie(shares.values, labels=shares.index, autopct="%1.0f%%")
            return "Stocks.csv"
        axes.pie(rng.uniform(1, 10, count), labels=[_words(rng, 1) for _ in range(count)],
                 autopct="%1.0f%%" if rng.random() < 0.5 else None)
        return "random"
    if chart == "histogram":
        if data is not None:
            returns = np.diff(np.log(data.goog["adj_close"]))
            axes.hist(returns, bins=int(rng.integers(20, 60)), color=np.array(_dark_enough(rng)) / 255)
            axes.set_xlabel("GOOG daily log return")
            return "goog.npz returns"
        values = np.concatenate([rng.normal(rng.uniform(-3, 3), rng.uniform(0.5, 2), 500) for _ in range(2)])
        axes.hist(values, bins=int(rng.integers(10, 50)))
        return "random"
    # heatmap
    if data is not None:
        choice = int(rng.integers(3))
        if choice == 0:
            matrix = data.stocks.pct_change().corr().values
            image = axes.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
            axes.set_xticks(range(len(matrix)), data.stocks.columns, rotation=90, fontsize="small")
            axes.set_yticks(range(len(matrix)), data.stocks.columns, fontsize="small")
            source = "Stocks.csv correlation"
        elif choice == 1:
            image = axes.imshow(data.elevation, cmap="terrain")
            source = "jacksboro_fault_dem.npz"
        else:
            image = axes.imshow(data.topography, cmap="gist_earth", origin="lower")
            source = "topobathy.npz"
    else:
        image = axes.imshow(rng.random((int(rng.integers(4, 20)), int(rng.integers(4, 20)))),
                            cmap=rng.choice(["viridis", "magma", "coolwarm", "YlGnBu"]))
        source = "random"
    axes.figure.colorbar(image, ax=axes)
    return source


# ---------------------------------------------------------------- screenshots


def _add_pil_screenshots(collector: _Collector, rng: np.random.Generator, fonts: _Fonts) -> None:
    layouts = ("desktop app", "phone app", "terminal", "web page")
    for number in range(1, _PIL_SCREENSHOTS + 1):
        layout = layouts[(number - 1) % len(layouts)]
        dark = layout == "terminal" or rng.random() < 0.4
        theme = "dark" if dark else "light"
        collector.add("screenshot", f"{theme} {layout} screenshot {number}",
                      partial(_screenshot, rng, fonts, layout, dark))


def _screenshot(rng: np.random.Generator, fonts: _Fonts, layout: str, dark: bool) -> Image.Image:
    """A made-up application window: title bar, sidebar, buttons, text fields and text lines."""
    if dark:
        background, panel, border = (30, 30, 32), (45, 45, 50), (70, 70, 80)
        text, muted = (220, 220, 220), (140, 140, 150)
    else:
        background, panel, border = (242, 242, 245), (255, 255, 255), (200, 200, 210)
        text, muted = (30, 30, 35), (120, 120, 130)
    accent = _dark_enough(rng)
    if layout == "phone app":
        width, height = 360, int(rng.integers(640, 800))
    else:
        width, height = [(800, 500), (1024, 640), (640, 400), (1280, 720)][int(rng.integers(4))]
    shot = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(shot)
    font = fonts.get(rng.integers(12, 16))
    line = font.size + 8

    def text_lines(x: int, y: int, right: int, bottom: int, colour=text, chars: int | None = None) -> None:
        per_line = chars or max(8, int((right - x) / (font.size * 0.6)))
        while y < bottom - line:
            draw.text((x, y), _words(rng, 30)[: int(rng.integers(per_line // 3, per_line))], font=font, fill=colour)
            y += line

    if layout == "terminal":
        mono = fonts.get(rng.integers(12, 16), "mono")
        draw.rectangle((0, 0, width, 28), fill=(60, 60, 65))
        for index, colour in enumerate([(255, 95, 86), (255, 189, 46), (39, 201, 63)]):
            draw.ellipse((10 + 20 * index, 8, 22 + 20 * index, 20), fill=colour)
        y = 36
        while y < height - mono.size:
            prompt = rng.random() < 0.3
            colour = (90, 220, 90) if prompt else _colour(rng, 150, 256)
            draw.text((8, y), ("$ " if prompt else "") + _words(rng, int(rng.integers(2, 12))), font=mono, fill=colour)
            y += mono.size + 4
        return shot
    if layout == "phone app":
        draw.rectangle((0, 0, width, 24), fill=accent)
        draw.text((12, 4), f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}", font=fonts.get(12),
                  fill=(255, 255, 255))
        draw.rectangle((0, 24, width, 80), fill=accent)
        draw.text((16, 38), _words(rng, 2).title(), font=fonts.get(20, "bold"), fill=(255, 255, 255))
        y = 92
        while y < height - 150:
            card_h = int(rng.integers(70, 130))
            draw.rounded_rectangle((12, y, width - 12, y + card_h), radius=10, fill=panel, outline=border)
            draw.rectangle((24, y + 12, 24 + card_h - 24, y + card_h - 12), fill=_dark_enough(rng))
            text_lines(card_h + 12, y + 12, width - 24, y + card_h, chars=24)
            y += card_h + 12
        draw.ellipse((width - 76, height - 140, width - 20, height - 84), fill=accent)
        draw.rectangle((0, height - 60, width, height), fill=panel)
        for index in range(4):
            x = 30 + index * (width - 60) // 3
            draw.rounded_rectangle((x - 12, height - 46, x + 12, height - 22), radius=5, outline=muted, width=2)
        return shot
    # desktop app and web page: a title bar first
    draw.rectangle((0, 0, width, 32), fill=panel)
    draw.line((0, 32, width, 32), fill=border)
    for index, glyph in enumerate(("x", "□", "–")):
        draw.text((width - 28 - 30 * index, 8), glyph, font=fonts.get(14), fill=muted)
    draw.text((width // 2 - 60, 8), _words(rng, 3).title(), font=fonts.get(14, "bold"), fill=text)
    top = 32
    if layout == "web page":
        draw.rectangle((0, top, width, top + 30), fill=background)
        draw.rounded_rectangle((120, top + 5, width - 120, top + 25), radius=10, fill=panel, outline=border)
        draw.text((135, top + 8), "https://" + _words(rng, 1) + ".example/" + _words(rng, 1), font=fonts.get(12),
                  fill=muted)
        top += 30
        draw.rectangle((0, top, width, top + 50), fill=accent)
        for index in range(int(rng.integers(3, 7))):
            draw.text((20 + index * 110, top + 16), _words(rng, 1).title(), font=fonts.get(15, "bold"),
                      fill=(255, 255, 255))
        top += 50
        hero = int(height * rng.uniform(0.15, 0.35))
        draw.rectangle((0, top, width, top + hero), fill=_colour(rng))
        draw.text((40, top + hero // 3), _words(rng, 4).title(), font=fonts.get(28, "bold"), fill=panel)
        top += hero + 20
        columns = int(rng.integers(1, 4))
        column_w = (width - 40) // columns
        for column in range(columns):
            x = 20 + column * column_w
            draw.text((x, top), _words(rng, 2).title(), font=fonts.get(18, "bold"), fill=text)
            text_lines(x, top + 30, x + column_w - 20, height - 10)
        return shot
    sidebar = int(width * rng.uniform(0.16, 0.28))
    draw.rectangle((0, top, sidebar, height), fill=panel if dark else (232, 232, 238))
    y = top + 16
    selected = int(rng.integers(0, 8))
    for index in range(int(rng.integers(6, 14))):
        if y > height - line:
            break
        if index == selected:
            draw.rectangle((0, y - 4, sidebar, y + line - 2), fill=accent)
        draw.text((16, y), _words(rng, int(rng.integers(1, 3))).title(), font=font,
                  fill=(255, 255, 255) if index == selected else text)
        y += line + 6
    # toolbar of buttons
    x = sidebar + 16
    for _ in range(int(rng.integers(2, 6))):
        label = _words(rng, 1).title()
        button_w = int(draw.textlength(label, font=font)) + 24
        primary = rng.random() < 0.4
        draw.rounded_rectangle((x, top + 12, x + button_w, top + 40), radius=6, fill=accent if primary else panel,
                               outline=accent if primary else border)
        draw.text((x + 12, top + 18), label, font=font, fill=(255, 255, 255) if primary else text)
        x += button_w + 10
    y = top + 56
    # text fields, each with its label
    for _ in range(int(rng.integers(1, 4))):
        draw.text((sidebar + 16, y), _words(rng, 2).title(), font=font, fill=muted)
        draw.rectangle((sidebar + 16, y + line, width - 24, y + 2 * line + 8), fill=panel, outline=border)
        draw.text((sidebar + 24, y + line + 4), _words(rng, 3), font=font, fill=muted)
        y += 2 * line + 20
    draw.text((sidebar + 16, y), _words(rng, 3).title(), font=fonts.get(font.size + 6, "bold"), fill=text)
    text_lines(sidebar + 16, y + line + 10, width - 24, height - 30)
    draw.rectangle((0, height - 22, width, height), fill=accent if rng.random() < 0.5 else panel)
    return shot


def _add_dashboards(collector: _Collector, rng: np.random.Generator) -> None:
    """matplotlib figures with several panels, like a dashboard or a notebook's output captured on screen."""
    import matplotlib.style
    from matplotlib.figure import Figure

    for number in range(1, _FIGURE_SCREENSHOTS + 1):
        rows, columns = [(2, 2), (1, 3), (1, 2), (3, 1)][int(rng.integers(4))]  # few panels: each costs ~50 ms
        dark = rng.random() < 0.4
        with matplotlib.style.context("dark_background" if dark else "default"):
            figure = Figure(figsize=(rng.uniform(7, 11), rng.uniform(4.5, 7)), dpi=60)
            for index in range(rows * columns):
                axes = figure.add_subplot(rows, columns, index + 1)
                _chart(axes, rng, _CHART_TYPES[int(rng.integers(len(_CHART_TYPES)))], None)
            figure.suptitle(_words(rng, 3).title())
            figure.subplots_adjust(left=0.07, right=0.97, bottom=0.08, top=0.88, wspace=0.35, hspace=0.45)
            picture = _render(figure)
        collector.add("screenshot", f"matplotlib {'dark ' if dark else ''}dashboard {number}", picture)
