#!/usr/bin/env python
"""Compare generators with each other and with real photos on the validation split, side by side.

Each generator is one column, and real photos another: the floor, one real training photo per
validation row with that row's labels (sub-category, gender and colour), which is what a perfect
generator would score. Reconstruction: the paper's loss (reconstruction BCE + KL/14400) and rounded
accuracy under its exact definitions, MSE and SSIM. Conditional accuracy: for every (sub-category,
gender) pair of the training data, images from many seeds, labeled by the classifier, every pair
weighing alike, per head (colour too for a colour-controlled generator judged by a labeler with a
colour head), and again over only the pairs that have validation photos, where the floor column
gives the same measure on real validation photos (rare pairs have none to score). Fréchet distance,
k-NN precision/recall and density/coverage between one generated image per validation row and the
real validation photos, on the classifier's penultimate features: Inception weights cannot be
downloaded here, so the numbers compare models with each other, not with published FIDs. Sharpness:
high-frequency energy (mean squared Laplacian) over the real photos'; lattice: how much the spectrum
peaks at period 2 (a checkerboard) beside the real photos' peak; texture: the most power, over real
photos', summed over 5x5 frequency bins, among the bins of periods under 4 pixels (a periodic
texture off the lattice's bins); pattern: the most power over real photos' of the same
sub-category, among 3x3-bin sums of periods 4-16 pixels (a plaid or stripes), on the mean log power
(so a pattern on every watch shows, a few busy photos do not), and which sub-category. All about 1
for real photos (pattern: 1.1-1.6, noisier).

Example: python scripts/evaluate_generator.py --data-dir ../shared/data/fashion-small --json gen.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # before Keras is imported below: its start-up chatter would spoil one-line errors

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.errors import ClassifierError, DatasetError, GeneratorError  # noqa: E402
from fashiongen.files import check_writable  # noqa: E402
from fashiongen.generator.generator import COLOUR, Generator  # noqa: E402
from fashiongen.generator.quality import (  # noqa: E402
    evaluate_generator,
    real_conditional_reference,
    real_validation,
)
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.model_folder import GENERATOR_VARIANTS  # noqa: E402
from fashiongen.paths import DEFAULT_DATA_DIR, PRETRAINED_ROOT  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402
from fashiongen.training import SPLITS  # noqa: E402

# the shipped generators compared when none is named, each when its folder exists, in this column order
SHIPPED = tuple((variant.name, variant.folder) for variant in GENERATOR_VARIANTS)
SHIPPED_HELP = ", ".join(f"{name}={folder.relative_to(PRETRAINED_ROOT.parent.parent).as_posix()}"
                         for name, folder in SHIPPED)
FLOOR, FLOOR_COLUMN = "real_floor", "real photos (floor)"
RESERVED = (FLOOR, "notes", "split")  # the report's other keys
ROWS = [("val_loss", "validation loss (paper's)", "{:.4f}"), ("rounded_accuracy", "rounded accuracy", "{:.4f}"),
        ("mse", "MSE", "{:.5f}"), ("ssim", "SSIM", "{:.4f}"),
        *((f"conditional_{head}{part}", label, "{:.3f}") for head in ("subCategory", "gender", COLOUR)
          for part, label in (("_accuracy", f"conditional {head} acc., all pairs"),
                              ("_accuracy_real_pairs", "  on the pairs real photos have"))),
        ("frechet_distance", "Fréchet distance (classifier features)", "{:.2f}"),
        ("frechet_over_floor", "Fréchet distance / floor's", "{:.1f}x"),
        ("knn_precision", "k-NN precision (k=3)", "{:.3f}"), ("knn_recall", "k-NN recall (k=3)", "{:.3f}"),
        ("density", "density (k=3)", "{:.3f}"), ("coverage", "coverage (k=3)", "{:.3f}"),
        ("sharpness_ratio", "sharpness (high-freq. energy) / real", "{:.2f}"),
        ("lattice_ratio", "lattice (period-2 peak) / real", "{:.2f}"),
        ("texture_ratio", "texture (worst 5x5 bins, periods < 4 px) / real", "{:.2f}"),
        ("pattern_ratio", "pattern (worst sub-category, periods 4-16 px) / real", "{:.2f}"),
        ("pattern_subCategory", "  in", "{}")]
# the floor column's conditional accuracies: the same measure on real validation photos, which do not
# have every pair generation draws; beside the generators' numbers over the same pairs
FLOOR_CONDITIONAL = {f"conditional_{head}_accuracy_real_pairs": f"{head}_accuracy"
                     for head in ("subCategory", "gender", COLOUR)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"dataset folder with styles.csv and images/ (default: {DEFAULT_DATA_DIR})")
    parser.add_argument("--generator", action="append", default=[], metavar="NAME=FOLDER",
                        help="a generator to compare, named NAME in the table and the JSON; repeat for several "
                             f"(default: the shipped ones whose folders exist: {SHIPPED_HELP})")
    parser.add_argument("--default", type=Path, default=None,
                        help="the default generator's folder: the entry named default (shipped: "
                             "fashiongen/pretrained/generator)")
    parser.add_argument("--paper", type=Path, default=None,
                        help="the paper architecture's folder: the entry named paper (shipped: "
                             "fashiongen/pretrained/generator-paper)")
    parser.add_argument("--classifier", type=Path, default=PRETRAINED_ROOT / "classifier",
                        help="the classifier that judges and provides features (default: the shipped one); a "
                             "catalog labeler with more heads works too, and judges the colour")
    parser.add_argument("--split", choices=SPLITS, default="random",
                        help="whose validation part to use; match the models' training split (default: random)")
    parser.add_argument("--seed", type=int, default=42,
                        help="the split's seed: training's --split-seed (default: 42)")
    parser.add_argument("--floor-seed", type=int, default=0,
                        help="draws the floor's real training photo for each validation row (default: 0)")
    parser.add_argument("--seeds-per-pair", type=int, default=16,
                        help="generated images per (sub-category, gender) pair (default: 16)")
    parser.add_argument("--json", type=Path, default=None,
                        help=f"write every report here: one key per generator, {FLOOR}, notes and split")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache folder")
    return parser.parse_args(argv)


def generator_folders(args: argparse.Namespace) -> dict[str, Path]:
    """Name -> folder, in column order: the --generator entries, else the shipped folders that exist;
    --default and --paper set those two entries. A malformed or repeated name raises `ValueError`."""
    named: dict[str, Path] = {}
    for entry in args.generator:
        name, _, folder = entry.partition("=")
        name = name.strip()
        if not name or not folder:
            raise ValueError(f"--generator takes NAME=FOLDER, got {entry!r}")
        if name in RESERVED:
            raise ValueError(f"--generator name {name!r} is taken by the report; use another")
        if name in named:
            raise ValueError(f"--generator names {name!r} twice")
        named[name] = Path(folder)
    folders = named or {name: folder for name, folder in SHIPPED if folder.is_dir()}
    for name, folder in (("default", args.default), ("paper", args.paper)):
        if folder is not None:
            if name in named:
                raise ValueError(f"--{name} and --generator {name}=... both name the {name} generator; keep one")
            folders[name] = folder
    if not folders:
        raise ValueError("no generator to evaluate: none of the shipped folders exists; name one with --generator")
    return folders


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        folders = generator_folders(args)
        if args.json:  # before the evaluation, so a bad output path does not throw its result away
            check_writable(args.json)
        labeler = Labeler.load(args.classifier)
        models = {name: Generator.load(folder) for name, folder in folders.items()}
        dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir)
        split = make_split(args.split, dataset, args.seed)
        real = real_validation(labeler, dataset, split, floor_seed=args.floor_seed)  # once for every generator
        reports = {name: evaluate_generator(model, labeler, dataset, split, args.seeds_per_pair, real=real)
                   for name, model in models.items()}
        floor = {**real.floor, "real_validation_conditional_accuracy":
                 real_conditional_reference(labeler, dataset, split, real)}
    except (ClassifierError, GeneratorError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_table(reports, floor)
    if args.json:
        reports[FLOOR] = floor
        reports["notes"] = ("Fréchet distance, k-NN precision/recall and density/coverage use the classifier's "
                            "penultimate features: Inception weights cannot be downloaded here. real_floor: one real "
                            "training photo per validation row with its labels, measured as generated images are.")
        reports["split"] = {"kind": args.split, "seed": args.seed, "n_validation": len(split.validation)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def print_table(reports: dict[str, dict], floor: dict) -> None:
    """One column per generator and one for the floor, one row per number."""
    reference = floor["real_validation_conditional_accuracy"]
    columns = {name: {**report, "frechet_over_floor": _over(report["frechet_distance"], floor["frechet_distance"])}
               for name, report in reports.items()}
    columns[FLOOR_COLUMN] = {**floor, **{row: reference[key] for row, key in FLOOR_CONDITIONAL.items()},
                             "frechet_over_floor": _over(floor["frechet_distance"], floor["frechet_distance"])}
    width = max(len(label) for _, label, _ in ROWS)
    widths = [max(10, len(name)) for name in columns]
    print(f"{'':{width}}" + "".join(f"  {name:>{w}}" for name, w in zip(columns, widths)))
    for key, label, fmt in ROWS:
        print(f"{label:{width}}" + "".join(f"  {_shown(column.get(key), fmt):>{w}}"
                                           for column, w in zip(columns.values(), widths)))
    print(f"{FLOOR_COLUMN}: {floor['n']} training photos with the validation rows' labels "
          f"(matched by {_matches(floor['matched_by'])}); its conditional accuracies are the real validation "
          f"photos' own, over the {reference['pairs']} pairs they have.")


def _over(value: float | None, floor: float | None) -> float | None:
    return None if value is None or not floor else value / floor


def _matches(levels: dict[str, int]) -> str:
    return ", ".join(f"{level} {count}" for level, count in levels.items() if count) or "nothing"


def _shown(value: float | None, fmt: str) -> str:
    """None (a number that too few validation images, or a generator without that head, cannot give) as n/a."""
    return "n/a" if value is None else fmt.format(value)


if __name__ == "__main__":
    sys.exit(main())
