"""Lab script (2026-12-01): would averaging two catalog labelers' probabilities reach the targets?

Averages the per-head probabilities of runs/catalog/random (width 32, 20 epochs) and
runs/catalog/wide (width 40, 30 epochs) on the random split's validation photos, and prints each
head's accuracy for either model alone and for the average. Not shipped: two models double the
latency and the weights (docs/labeler.md).

    python docs/experiments/2026-12-01-catalog-ensemble.py --data-dir ../shared/data/fashion-small
"""

import argparse
from pathlib import Path

import numpy as np

from fashiongen.dataset import load_dataset
from fashiongen.labeler.labeler import Labeler
from fashiongen.splits import make_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the dataset folder")
    parser.add_argument("--models", type=Path, nargs="+", default=[Path("runs/catalog/random"), Path("runs/catalog/wide")],
                        help="catalog labeler folders with the same schema")
    args = parser.parse_args()
    dataset = load_dataset(args.data_dir)
    rows = make_split("random", dataset, 42).validation
    images, styles = dataset.images[rows], dataset.styles.iloc[rows]
    labelers = [Labeler.load(folder) for folder in args.models]
    schema = labelers[0].schema
    assert all(labeler.schema == schema for labeler in labelers), "the models need one schema"
    scores = [labeler.scores(images) for labeler in labelers]
    truth = schema.encode_frame(styles)
    print(f"{'head':15}" + "".join(f"{folder.name:>10}" for folder in args.models) + f"{'average':>10}{'n':>7}")
    for column, part in schema.slices.items():
        covered = truth[:, part].sum(axis=1) > 0
        wanted = truth[covered, part].argmax(axis=1)
        accuracies = [np.mean(s[covered, part].argmax(axis=1) == wanted) for s in scores]
        average = np.mean([s[covered, part] for s in scores], axis=0)
        accuracies.append(np.mean(average.argmax(axis=1) == wanted))
        print(f"{column:15}" + "".join(f"{a:10.4f}" for a in accuracies) + f"{int(covered.sum()):7d}")


if __name__ == "__main__":
    main()
