"""A grid of real validation photos and each generator's reconstructions of them: a row of real
photos, then one row per generator, for the first eight validation photos (random split, seed 42)
of each sub-category asked for, at twice their size:

    python docs/experiments/2026-12-07-reconstruction-grid.py --data-dir ../shared/data/fashion-small \
        --sub-categories Watches Topwear Shoes --out grid.png \
        --generator fashiongen/pretrained/generator --generator runs/generator/X
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.imaging import image_grid  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402

PER_SUB_CATEGORY = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="dataset folder with styles.csv and images/")
    parser.add_argument("--generator", type=Path, action="append", required=True,
                        help="a generator folder, one row of the grid each (repeatable)")
    parser.add_argument("--sub-categories", nargs="+", default=["Watches", "Topwear", "Shoes"],
                        help="the sub-categories whose first eight validation photos are shown")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()
    dataset = load_dataset(args.data_dir)
    validation = np.asarray(make_split("random", dataset, 42).validation)
    sub_categories = dataset.styles["subCategory"].to_numpy()[validation]
    picked = np.concatenate([validation[np.flatnonzero(sub_categories == name)[:PER_SUB_CATEGORY]]
                             for name in args.sub_categories])
    images = dataset.images[picked]
    rows = [images]
    for folder in args.generator:
        generator = Generator.load(folder, with_prior=False)
        conditions = generator.schema.encode_frame(dataset.styles.iloc[picked])
        rows.append(generator.reconstruct(images, conditions))
    image_grid(np.concatenate(rows), columns=len(picked), scale=2, gap=0).save(args.out)
    print(f"{args.out}: {len(rows) - 1} generators, {len(picked)} photos")


if __name__ == "__main__":
    main()
