"""The same eight (sub-category, gender) pairs and seed from several generators, one block of rows
each, with real validation photos of those pairs on top (the issue's side-by-side grids):

    python docs/experiments/2026-12-02-side-by-side.py --data-dir ../shared/data/fashion-small \
        --generator paper=fashiongen/pretrained/generator-paper \
        --generator shipped=fashiongen/pretrained/generator \
        --generator vaegan=runs/generator/vaegan --out runs/side-by-side.png

Columns are the eight commonest pairs of the validation split that the last generator knows; each
generator draws two images per pair (seed 7, "any" colour); the real photos are the pair's first
two validation photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fashiongen.dataset import load_dataset
from fashiongen.generator.generator import Generator
from fashiongen.imaging import image_grid
from fashiongen.splits import make_split

PAIRS, PER_PAIR, SEED = 8, 2, 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/fashion-small"), help="the dataset")
    parser.add_argument("--generator", action="append", required=True, metavar="NAME=FOLDER",
                        help="a generator folder, top to bottom in the order given")
    parser.add_argument("--out", type=Path, default=Path("runs/side-by-side.png"), help="the PNG to write")
    args = parser.parse_args()

    dataset = load_dataset(args.data_dir)
    rows_of_split = np.asarray(make_split("random", dataset, 42).validation)
    validation = dataset.styles.iloc[rows_of_split]
    generators = [(name, Generator.load(folder)) for name, folder in
                  (entry.split("=", 1) for entry in args.generator)]
    known = validation["subCategory"].isin(generators[-1][1].schema.sub_categories).to_numpy()
    pairs = (validation[known].groupby(["subCategory", "gender"]).size().sort_values(ascending=False, kind="stable")
             .index[:PAIRS])
    print("columns:", ", ".join(f"{sub}/{gender}" for sub, gender in pairs))

    rows = []  # PER_PAIR rows per block: row r holds image r of every pair
    real = [dataset.images[rows_of_split[((validation["subCategory"] == sub) & (validation["gender"] == gender))
                                         .to_numpy()][:PER_PAIR]] for sub, gender in pairs]
    rows += [np.stack([images[r] for images in real]) for r in range(PER_PAIR)]
    for name, generator in generators:
        drawn = [generator.generate(sub, gender, SEED, PER_PAIR) for sub, gender in pairs]
        rows += [np.stack([images[r] for images in drawn]) for r in range(PER_PAIR)]
        print(f"rows {len(rows) - PER_PAIR + 1}-{len(rows)}: {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image_grid(np.concatenate(rows), columns=PAIRS, scale=2).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
