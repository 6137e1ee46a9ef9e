#!/usr/bin/env python
"""Fit a trained labeler's temperatures and its not-a-product detector, and write them into its folder.

On the validation part of the split the model was trained on (read from its model card): one
temperature per softmax head (expected calibration error before and after), and the detector's
threshold, which flags 2% of those real photos. Every detector score is measured on the
non-product set (natural photos, drawings, documents, charts, screenshots, noise, crops built
from images that packages ship; docs/labeler.md); --method picks the one shipped.
train_classifier.py runs this itself; run it again after changing the detector.

Example:
  python scripts/calibrate_classifier.py --model fashiongen/pretrained/classifier \\
      --data-dir ../shared/data/fashion-small --figures runs/calibration
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashiongen.errors import ClassifierError, DatasetError
from fashiongen.files import check_writable
from fashiongen.labeler.outliers import DEFAULT_METHOD, METHODS
from fashiongen.model_folder import LABELER
from fashiongen.paths import DEFAULT_DATA_DIR
from fashiongen.runtime import import_tensorflow_quietly


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=LABELER.shipped,
                        help="model folder to calibrate (default: the shipped fashiongen/pretrained/classifier)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="the dataset the model was trained on (images/ and styles.csv)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache (default: as training)")
    parser.add_argument("--method", choices=("auto", *METHODS), default=DEFAULT_METHOD,
                        help="not-a-product score (every one is measured and reported; auto keeps the one that "
                             "flags most non-product images)")
    parser.add_argument("--figures", type=Path, default=None,
                        help="write reliability diagrams (HTML) per head to this folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.figures:
            check_writable(args.figures, folder=True)
        check_writable(args.model, folder=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import_tensorflow_quietly()
    from fashiongen.labeler.labeler import Labeler

    try:
        labeler = Labeler.load(args.model)
        report = calibrate(labeler, args, argv if argv is not None else sys.argv[1:])
    except (ClassifierError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from fashiongen.labeler.fitting import calibration_summary

    print(calibration_summary(report))
    print(f"wrote the calibration into {args.model}")
    return 0


def calibrate(labeler, args: argparse.Namespace, argv: list[str]) -> dict:
    """Fit, write labeler.json/outliers.npz and the card's entries, draw the figures; the report."""
    from fashiongen.dataset import load_dataset
    from fashiongen.labeler.calibration import reliability_figure
    from fashiongen.labeler.fitting import card_entries, fit_shipped_calibration
    from fashiongen.labeler.labeler import save_calibration
    from fashiongen.model_folder import write_card
    from fashiongen.splits import split_of_card
    from fashiongen.training import script_command

    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir, progress=not args.quiet)
    split = split_of_card(labeler.card.get("split"), dataset, str(args.model))
    train_rows = split.train
    calibration, report = fit_shipped_calibration(labeler, dataset.images, dataset.labels(labeler.schema), train_rows,
                                                  split.validation, args.method)
    save_calibration(args.model, calibration)
    card = dict(labeler.card)
    card.setdefault("metrics", {}).update(card_entries(report))
    card["calibration_command"] = script_command("calibrate_classifier.py", argv)
    write_card(Path(args.model) / "model_card.json", card)
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        for column, entry in report["calibration"].items():
            figure = reliability_figure({"before": {"ece": entry["ece_before"], "bins": entry["bins_before"]},
                                         f"after (T = {entry['temperature']:.2f})":
                                             {"ece": entry["ece_after"], "bins": entry["bins_after"]}},
                                        f"{column}: reliability on {entry['n']:,} validation photos")
            figure.write_html(args.figures / f"reliability_{column}.html", include_plotlyjs=True)
        (args.figures / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    sys.exit(main())
