"""A copy of a generator whose latent prior draws every seen pair's Gaussian at `psi` times its spread
(the truncation trick: precision for recall), for evaluate_generator.py to measure:

    python docs/experiments/2026-12-07-truncated-prior.py --generator fashiongen/pretrained/generator \
        --psi 0.85 --out runs/generator/trunc85
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from fashiongen.generator.prior import PRIOR_FILE, LatentPrior
from fashiongen.model_folder import CARD_FILE, GENERATOR, write_card


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
    if not (args.generator / PRIOR_FILE).is_file():
        parser.error(f"{args.generator} has no {PRIOR_FILE}")
    prior = LatentPrior.load(args.generator / PRIOR_FILE)
    shutil.copytree(args.generator, args.out)
    # a uniform stretch: refined() stores one factor per key (about 33 MB for the real data's
    # thousand keys, fine for a trial); unseen pairs keep their fallback, as refined() documents
    # the Gaussian alone: a residual kernel (the default's since 2026-12-07) would keep its residuals
    # unscaled, and this note truncated the Gaussian
    prior = prior.with_kernel(None)
    prior.refined(np.zeros(prior.means.shape), np.full(prior.means.shape, np.log(args.psi))).save(args.out / PRIOR_FILE)
    card = GENERATOR.open(args.out).card()
    write_card(args.out / CARD_FILE, card | {"truncated_prior": {"psi": args.psi, "command": " ".join(sys.argv)}})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
