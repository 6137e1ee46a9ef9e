#!/usr/bin/env python
"""Measure how noisy the dataset's labels are, and how much of a labeler's colour error is noise.

1. Byte-identical photos listed under several ids: per column, the share of pairs whose labels differ.
2. With --model: on the validation photos of the model's split, its baseColour errors split by
   what the product name says: the predicted colour (the label is likely wrong), the label's
   colour (a model error), or neither.

Example:
  python scripts/label_noise.py --data-dir ../shared/data/fashion-small \\
      --model fashiongen/pretrained/classifier --json runs/label_noise.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashiongen.errors import ClassifierError, DatasetError
from fashiongen.files import atomic_write_text, check_writable
from fashiongen.paths import DEFAULT_DATA_DIR
from fashiongen.schema import DISPLAY_ORDER


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="dataset folder (images/, styles.csv)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache (default: as training)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a labeler folder with a baseColour head: also split its colour errors by source")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.json:
            check_writable(args.json)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from fashiongen.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    try:
        report = measure(args)
    except (ClassifierError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def measure(args: argparse.Namespace) -> dict:
    from fashiongen.dataset import load_dataset
    from fashiongen.labeler.label_noise import colour_error_sources, duplicate_disagreement
    from fashiongen.labeler.labeler import Labeler
    from fashiongen.splits import split_of_card

    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir, progress=not args.quiet)
    duplicates = duplicate_disagreement(dataset.styles, dataset.digests, DISPLAY_ORDER)
    print(f"{'column':<16}{'duplicate pairs':>16}{'labels differ':>15}")
    for column, entry in duplicates.items():
        share = "n/a" if entry["disagreement"] is None else f"{entry['disagreement']:.1%}"
        print(f"{column:<16}{entry['pairs']:>16,}{share:>15}")
    report: dict = {"duplicates": duplicates}
    if args.model is None:
        return report
    labeler = Labeler.load(args.model)
    if "baseColour" not in labeler.schema.heads:
        raise ValueError(f"{args.model} has no baseColour head")
    colours = labeler.schema.heads["baseColour"]
    split = split_of_card(labeler.card.get("split"), dataset, str(args.model))
    styles = dataset.styles.iloc[split.validation]
    in_head = styles["baseColour"].isin(colours).to_numpy()
    rows = split.validation[in_head]
    scores = labeler.scores(dataset.images[rows])[:, labeler.schema.slices["baseColour"]]
    predicted = [colours[i] for i in scores.argmax(axis=1)]
    sources = colour_error_sources(styles["productDisplayName"].to_numpy()[in_head],
                                   styles["baseColour"].to_numpy()[in_head], predicted, colours)
    errors = max(sources["errors"], 1)
    print(f"\nbaseColour on {sources['rows']:,} validation photos: {sources['errors']:,} errors "
          f"(accuracy {1 - sources['errors'] / max(sources['rows'], 1):.4f})")
    for key, text in (("name_says_prediction", "the product name says the predicted colour"),
                      ("name_says_label", "the product name says the label's colour"),
                      ("name_silent", "the name says neither (or no colour)")):
        print(f"  {text:<46}{sources[key]:>6,} ({sources[key] / errors:.1%} of errors)")
    report["colour_errors"] = sources
    report["model"] = str(args.model)
    return report


if __name__ == "__main__":
    sys.exit(main())
