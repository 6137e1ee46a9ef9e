#!/usr/bin/env python
"""Give a generator's latent prior a residual kernel: the training photos' own codes around their key.

The encoder's mean code of every training photo, minus its key's mean, is stored with the prior (at
8 bits per number, fashiongen/generator/kernel.py). generate() then draws, for each image, the key's
centre (the prior's, refined by its judges if it was) plus one training photo's residual, chosen by
the seed, plus --spread of the key's Gaussian spread, instead of the Gaussian alone: the spread of
real codes around the judged centre (docs/experiments/2026-12-07-mixture-prior.md). The Gaussians,
the Keras files and reconstruction stay as they were; only prior.npz and the model card change.
Example: python scripts/fit_prior_kernel.py --data-dir ../shared/data/fashion-small --generator runs/generator/X
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # before Keras is imported below: its start-up chatter would spoil one-line errors

from fashiongen import model_folder  # noqa: E402
from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.errors import DatasetError, GeneratorError  # noqa: E402
from fashiongen.files import check_writable  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.kernel import MIN_PHOTOS, RARE_FROM_PAIR, SPREAD  # noqa: E402
from fashiongen.generator.prior import PRIOR_FILE  # noqa: E402
from fashiongen.model_folder import CARD_FILE, GENERATOR  # noqa: E402
from fashiongen.paths import DEFAULT_DATA_DIR  # noqa: E402
from fashiongen.splits import split_of_card  # noqa: E402
from fashiongen.training import command_line, script_command  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"dataset folder with styles.csv and images/ (default: {DEFAULT_DATA_DIR})")
    parser.add_argument("--generator", type=Path, default=GENERATOR.shipped,
                        help="generator folder with a latent prior, updated in place (default: the shipped one)")
    parser.add_argument("--spread", type=float, default=SPREAD,
                        help=f"share of each key's Gaussian spread drawn around a residual (default: {SPREAD:g})")
    parser.add_argument("--min-photos", type=int, default=MIN_PHOTOS,
                        help="keys with fewer training photos draw from their Gaussian (or, with --rare-keys pair, "
                             f"their pair's residuals) instead (default: {MIN_PHOTOS})")
    parser.add_argument("--rare-keys", choices=("pair", "gaussian"), default="pair" if RARE_FROM_PAIR else "gaussian",
                        help="what a key with fewer than --min-photos photos draws: a residual of any photo of its "
                             "(sub-category, gender) pair, or its Gaussian (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache folder")
    args = parser.parse_args(argv)
    args.argv = command_line(argv)  # for the model card
    if not (math.isfinite(args.spread) and args.spread >= 0):
        parser.error(f"--spread must be a number of at least 0, got {args.spread:g}")
    if args.min_photos < 1:
        parser.error(f"--min-photos must be at least 1, got {args.min_photos}")
    return args


def fit(args: argparse.Namespace) -> dict:
    generator = Generator.load(args.generator)
    if generator.prior is None:  # before the slow part; fit_kernel would say the same after it
        raise GeneratorError(f"{args.generator} has no latent prior ({generator.arch} generator); a conv or "
                             "vaegan generator gets one from fit_generator_prior.py")
    for name in (PRIOR_FILE, CARD_FILE):  # checked before the slow part
        check_writable(args.generator / name)
    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir)
    try:  # the photos the generator was trained on, as its card names them
        rows = split_of_card(generator.card.get("split"), dataset, str(args.generator)).train
    except ValueError as error:
        raise GeneratorError(str(error)) from None
    conditions = generator.schema.encode_frame(dataset.styles.iloc[rows])
    kernel = generator.fit_kernel(dataset.images[rows], conditions, args.spread, args.min_photos,
                                  rare_from_pair=args.rare_keys == "pair")
    summary = kernel.describe() | {"fitted_on": f"training part of the card's split ({len(rows):,} rows), "
                                                "the encoder's mean codes as saved",
                                   "command": script_command("fit_prior_kernel.py", args.argv)}
    generator.prior.save(args.generator / PRIOR_FILE)
    latent_prior = dict(generator.card.get("latent_prior", {}), kernel=summary)
    model_folder.write_card(args.generator / CARD_FILE, dict(generator.card, latent_prior=latent_prior))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = fit(args)
    except (DatasetError, GeneratorError, ValueError) as error:  # ValueError: check_writable's
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"gave the latent prior of {args.generator} a kernel of {summary['photos']:,} training photos' codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
