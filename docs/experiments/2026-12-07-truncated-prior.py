"""A copy of a generator whose latent prior draws every key's Gaussian at `psi` times its spread
(the truncation trick: precision for recall), for evaluate_generator.py to measure:

    python docs/experiments/2026-12-07-truncated-prior.py --generator fashiongen/pretrained/generator \
        --psi 0.85 --out runs/generator/trunc85
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from fashiongen.generator.prior import PRIOR_FILE, LatentPrior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", type=Path, required=True, help="generator folder with a latent prior")
    parser.add_argument("--psi", type=float, required=True, help="the spread's factor, in (0, 1]")
    parser.add_argument("--out", type=Path, required=True, help="new folder for the copy")
    args = parser.parse_args()
    if not 0 < args.psi <= 1:
        parser.error("--psi must be in (0, 1]")
    if args.out.exists():
        parser.error(f"{args.out} exists")
    prior = LatentPrior.load(args.generator / PRIOR_FILE)
    shutil.copytree(args.generator, args.out)
    # each key's factor scaled: a file of one factor per key (about a thousand), fine for a trial
    truncated = prior.refined(np.zeros(prior.means.shape), np.full(prior.means.shape, np.log(args.psi)))
    truncated.save(args.out / PRIOR_FILE)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
