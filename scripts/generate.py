#!/usr/bin/env python
"""Draw new product images of a sub-category and gender with the generator, as a PNG grid.

The same --sub-category, --gender, --seed and --n always give the same pixels.
Example: python scripts/generate.py --sub-category Shoes --gender Men --seed 7 --n 16 --out grid.png
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Import this checkout's package even when another checkout is the one pip installed.
sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sub-category", required=True, help="one of the model's sub-categories, e.g. Shoes")
    parser.add_argument("--gender", required=True, help="one of the model's genders, e.g. Men")
    parser.add_argument("--seed", type=int, default=0, help="any integer; picks the random codes (default: 0)")
    parser.add_argument("--n", type=int, default=16, help="how many images (default: 16)")
    parser.add_argument("--columns", type=int, default=None, help="images per row of the grid (default: about sqrt(n))")
    parser.add_argument("--scale", type=int, default=2, help="enlarge each 60x80 image this many times (default: 2)")
    parser.add_argument("--model", type=Path, default=None,
                        help="generator folder (default: the shipped fashiongen/pretrained/generator)")
    parser.add_argument("--out", type=Path, default=Path("grid.png"), help="PNG file to write (default: grid.png)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.scale < 1 or (args.columns is not None and args.columns < 1):
        parser.error("--n, --scale and --columns must be at least 1")
    if args.n > 1024:
        parser.error("--n is limited to 1024 images per grid")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fashiongen.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fashiongen import vae
    from fashiongen.imaging import image_grid

    try:
        generator = vae.Generator.load(args.model or vae.PRETRAINED_DIR)
        images = generator.generate(args.sub_category, args.gender, args.seed, args.n)
    except vae.GeneratorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    columns = args.columns or math.ceil(math.sqrt(args.n))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, columns, args.scale).save(args.out)
    print(f"wrote {args.out}: {args.n} x {args.sub_category} / {args.gender}, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
