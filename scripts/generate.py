#!/usr/bin/env python
"""Draw new product images of a sub-category and gender (and colour) with a generator, as a PNG grid.

The same --sub-category, --gender, --colour, --seed and --n always give the same pixels.
Example: python scripts/generate.py --sub-category Shoes --gender Men --seed 7 --n 16 --out grid.png
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from fashiongen.errors import GeneratorError
from fashiongen.files import check_writable
from fashiongen.imaging import IMAGE_HEIGHT, IMAGE_WIDTH, image_grid
from fashiongen.model_folder import GENERATOR_VARIANTS
from fashiongen.runtime import import_tensorflow_quietly
from fashiongen.schema import ANY_COLOUR

MAX_N = 1024
MAX_SCALE = 16
# Bounds the grid picture (about 150 MB in memory as RGB) whatever --n, --columns and --scale say.
MAX_GRID_PIXELS = 50_000_000
OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VARIANTS = {variant.name: variant for variant in GENERATOR_VARIANTS}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sub-category", required=True, help="one of the model's sub-categories, e.g. Shoes")
    parser.add_argument("--gender", required=True, help="one of the model's genders, e.g. Men")
    parser.add_argument("--colour", default=ANY_COLOUR,
                        help=f"one of the generator's colours, e.g. Black, for a generator with colour control; "
                             f"{ANY_COLOUR!r} draws each image's colour from those seen with the sub-category and "
                             f"gender (default: {ANY_COLOUR})")
    parser.add_argument("--seed", type=int, default=0, help="any integer; picks the random codes (default: 0)")
    parser.add_argument("--n", type=int, default=16, help=f"how many images, at most {MAX_N} (default: 16)")
    parser.add_argument("--columns", type=int, default=None, help="images per row of the grid (default: about sqrt(n))")
    parser.add_argument("--scale", type=int, default=2,
                        help=f"enlarge each {IMAGE_WIDTH}x{IMAGE_HEIGHT} image this many times, at most {MAX_SCALE} "
                             f"(default: 2); the whole grid may have at most {MAX_GRID_PIXELS // 1_000_000} megapixels")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--generator", choices=list(VARIANTS), default=GENERATOR_VARIANTS[0].name,
                       help="a shipped generator by name: " + "; ".join(f"'{v.name}' is {v.description}"
                                                                        for v in GENERATOR_VARIANTS)
                            + f" (default: {GENERATOR_VARIANTS[0].name})")
    which.add_argument("--model", type=Path, default=None,
                       help="a generator folder, instead of a shipped --generator")
    parser.add_argument("--out", type=Path, default=Path("grid.png"),
                        help=f"image file to write, ending in {', '.join(OUT_SUFFIXES)} (default: grid.png)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.scale < 1 or (args.columns is not None and args.columns < 1):
        parser.error("--n, --scale and --columns must be at least 1")
    if args.n > MAX_N:
        parser.error(f"--n is limited to {MAX_N} images per grid")
    if args.scale > MAX_SCALE:
        parser.error(f"--scale is limited to {MAX_SCALE}")
    args.columns = min(args.columns or math.ceil(math.sqrt(args.n)), args.n)
    rows = math.ceil(args.n / args.columns)
    pixels = rows * args.columns * IMAGE_WIDTH * IMAGE_HEIGHT * args.scale**2
    if pixels > MAX_GRID_PIXELS:
        parser.error(f"a grid of {rows} x {args.columns} images at --scale {args.scale} would have "
                     f"{pixels / 1e6:.0f} megapixels, over the limit of {MAX_GRID_PIXELS // 1_000_000}: "
                     "lower --scale or --n")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # before the model is loaded and run
        if args.out.suffix.lower() not in OUT_SUFFIXES:
            raise ValueError(f"--out {args.out}: give an image file name ending in {', '.join(OUT_SUFFIXES)}")
        check_writable(args.out)
        folder = args.model or shipped_folder(args.generator)
    except (ValueError, GeneratorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import_tensorflow_quietly()
    # imported here, not at the top: a bad --out fails before TensorFlow's seconds of start-up
    from fashiongen.generator.generator import Generator

    try:
        generator = Generator.load(folder)
        colour = None if args.colour == ANY_COLOUR else args.colour
        check_colour(colour, generator.colours)
        images = generator.generate(args.sub_category, args.gender, args.seed, args.n, colour)
    except GeneratorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, args.columns, args.scale).save(args.out)
    shown = f"{args.sub_category} / {args.gender}" + (f" / {colour}" if colour else "")
    print(f"wrote {args.out}: {args.n} x {shown}, seed {args.seed}")
    return 0


def shipped_folder(name: str) -> Path:
    """The folder of the shipped generator `name`; one that is not installed is a user's mistake."""
    folder = VARIANTS[name].folder
    if not folder.is_dir() and name != GENERATOR_VARIANTS[0].name:  # a missing default: load says how to retrain
        installed = ", ".join(v.name for v in GENERATOR_VARIANTS if v.folder.is_dir())
        raise GeneratorError(f"--generator {name}: this checkout has no such generator ({folder} is missing); "
                             f"installed: {installed or 'none'}")
    return folder


def check_colour(colour: str | None, colours: tuple[str, ...]) -> None:
    """--colour names one of the generator's colours (None, any, always fits)."""
    if colour is None:
        return
    if not colours:
        raise GeneratorError(f"--colour {colour}: this generator has no colour control; leave --colour out")
    if colour not in colours:
        raise GeneratorError(f"--colour {colour}: unknown colour; valid: {ANY_COLOUR}, {', '.join(colours)}")


if __name__ == "__main__":
    sys.exit(main())
