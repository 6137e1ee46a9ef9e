#!/usr/bin/env python
"""Train the sub-category + gender classifier on the dataset and save it with its model card.

Examples:
  python scripts/train_classifier.py --data-dir ../shared/data/fashion-small --out runs/my-classifier
  python scripts/train_classifier.py --arch paper --backbone-weights imagenet --epochs 10
  python scripts/train_classifier.py --resume            # continue an interrupted run

The model lands in --out only when training finished and was evaluated, and only when it has a
lower validation loss than the model already there, both measured on this run's validation
images, unless --replace (otherwise it goes to --run-dir/model). An interrupted run leaves the
previous model untouched (its progress stays in --run-dir for --resume).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Import this checkout's package even when another checkout is the one pip installed.
sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from fashiongen.labeler.model import ARCHITECTURES, DEFAULT_ARCH
    from fashiongen.training import common_arguments, parse_training_args

    shared = common_arguments("classifier", "classifier.keras, labels.json and model_card.json", epochs=15,
                              batch_size=128)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[shared])
    parser.add_argument("--arch", choices=ARCHITECTURES, default=DEFAULT_ARCH,
                        help=f"model: compact CNN from scratch (default), paper = frozen MobileNetV2 + "
                             f"Dense(1024) head, mobilenet = MobileNetV2 alpha 0.35 from scratch (default: {DEFAULT_ARCH})")
    parser.add_argument("--backbone-weights", default="none",
                        help="MobileNetV2 archs: 'imagenet' (download), a local .h5 path, or 'none' (default: none)")
    parser.add_argument("--learning-rate", type=float, default=2e-3,
                        help="Adam's initial learning rate, decayed along a cosine (default: 0.002)")
    parser.add_argument("--paper-loop", action="store_true",
                        help="arch paper: push every image through the frozen backbone every epoch, as the paper "
                             "does, instead of computing the backbone features once")
    args = parse_training_args(parser, argv, "classifier")
    if args.backbone_weights.lower() == "none":
        args.backbone_weights = None
    return args


def train(args: argparse.Namespace) -> dict:
    import keras

    from fashiongen import training
    from fashiongen.batches import ImageBatches
    from fashiongen.dataset import load_dataset
    from fashiongen.distribute import make_strategy, report_worker, use_worker_folders
    from fashiongen.labeler.labeler import Labeler, save_bundle
    from fashiongen.labeler.model import build_classifier, compile_classifier, split_at_features
    from fashiongen.labeler.report import classification_report, format_report_table, save_confusion_figures
    from fashiongen.schema import LabelSchema
    from fashiongen.splits import make_split

    strategy = make_strategy(args.strategy, args.cpu_devices)
    use_worker_folders(strategy, args)
    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir, progress=not args.quiet)
    schema = LabelSchema.from_styles(dataset.styles)
    labels = dataset.labels(schema)
    split = make_split(args.split, dataset, args.seed)
    train_rows = split.train[: args.limit]
    print(training.data_report(dataset, split, train_rows))
    training.check_enough_data(args.data_dir, dataset, schema, split, train_rows)
    previous = training.previous_model(args.out, Labeler.load,
                                       lambda old: training.schema_difference(old.schema, schema),
                                       args.replace)
    best_weights = training.prepare_run_dir(args.run_dir, args.resume)
    verbose = 0 if args.quiet else 1
    started = time.perf_counter()

    with strategy.scope():
        model = build_classifier(len(schema.sub_categories), len(schema.genders), args.arch,
                                            args.backbone_weights)
        cached_features = args.arch == "paper" and not args.paper_loop
        extractor, head = split_at_features(model) if cached_features else (None, model)
        # the paper: Adam at its default rate; ours: a cosine decay from --learning-rate
        steps = -(-len(train_rows) // args.batch_size) * args.epochs
        rate = 1e-3 if args.arch == "paper" else keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
        compile_classifier(head, schema, rate, steps_per_execution=32 if cached_features else 1)

    inputs = dataset.images
    if cached_features:
        # frozen backbone: its features never change, so compute them once, not every epoch
        inputs = extractor.predict(ImageBatches(dataset.images, batch_size=256), verbose=verbose)
    replicas = strategy.num_replicas_in_sync
    history = head.fit(
        ImageBatches(inputs, labels, args.batch_size, indices=train_rows, shuffle=True, seed=args.seed,
                     replicas=replicas),
        validation_data=ImageBatches(inputs, labels, 256, indices=split.validation, replicas=replicas),
        epochs=args.epochs, verbose=verbose,
        callbacks=training.standard_callbacks(args.run_dir, best_weights, strategy=strategy),
        # ImageBatches shuffles by --seed; Keras' batch-order shuffle is unseeded (workers would disagree)
        shuffle=False,
    )
    train_seconds = time.perf_counter() - started
    training.load_best_weights(head, best_weights, args.out)
    report_worker(strategy, model)

    # a view made outside strategy.scope(): under MirroredStrategy, Keras' predict_on_batch feeds
    # the whole batch to every replica and returns replicas x N rows
    labeler = Labeler(keras.Model(model.input, model.output, name=model.name), schema)

    def validation_report(scored: Labeler) -> dict:
        """The new model and the one in --out are measured alike: this run's validation images."""
        return classification_report(labels[split.validation],
                                             scored.scores(dataset.images[split.validation]), schema)

    report = validation_report(labeler)
    card = {
        **training.card_basics("classifier", args.arch, args.argv, args.data_dir, dataset, split, train_rows),
        "backbone_weights": args.backbone_weights,
        "parameters": int(model.count_params()),
        "training": {
            "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
            "seconds": round(train_seconds, 1), "cached_backbone_features": cached_features,
            "history": training.rounded_history(history),
        },
        "metrics": {"validation": {k: v for k, v in report.items() if k not in ("per_class", "confusion")}},
    }
    destination = training.keep_better(args.out, args.run_dir, report["loss"],
                                       None if previous is None else validation_report(previous)["loss"],
                                       args.replace, len(split.validation))
    save_bundle(destination, model, schema, card)
    (args.run_dir / "validation_report.json").write_text(json.dumps(report, indent=2) + "\n")
    save_confusion_figures(report, args.run_dir)
    print(format_report_table(report))
    print(f"saved {destination} ({train_seconds:.0f} s of training); TensorBoard logs in "
          f"{args.run_dir / 'tensorboard'}")
    return card


def main(argv: list[str] | None = None) -> int:
    from fashiongen.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()  # before parse_args, which imports the classifier (and so Keras)
    args = parse_args(argv)
    from fashiongen.errors import ClassifierError, DatasetError, TrainingError

    try:
        train(args)
    except (DatasetError, ClassifierError, TrainingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the previous model in {args.out} is untouched; continue with --resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
