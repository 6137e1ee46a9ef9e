#!/usr/bin/env python
"""Train the labeler on the dataset and save it with its model card.

Archs compact and mobilenet learn every head of the catalog (masterCategory, subCategory,
articleType, baseColour, gender, season, usage); arch paper the paper's sub-category and gender.

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

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # before Keras is imported below: its start-up chatter would spoil one-line errors

import keras  # noqa: E402

from fashiongen import training  # noqa: E402
from fashiongen.batches import ImageBatches  # noqa: E402
from fashiongen.config import option  # noqa: E402
from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.distribute import make_strategy, report_worker, use_worker_folders  # noqa: E402
from fashiongen.errors import ClassifierError, DatasetError, TrainingError  # noqa: E402
from fashiongen.labeler.fitting import calibration_summary, card_entries, fit_shipped_calibration  # noqa: E402
from fashiongen.labeler.labeler import Calibration, Labeler, save_bundle, save_calibration  # noqa: E402
from fashiongen.labeler.model import (  # noqa: E402
    ARCHITECTURES,
    DEFAULT_ARCH,
    DEFAULT_SHIFT,
    DEFAULT_WIDTH,
    HEAD_SETS,
    build_classifier,
    compile_classifier,
    split_at_features,
)
from fashiongen.labeler.outliers import DEFAULT_METHOD, METHODS  # noqa: E402
from fashiongen.labeler.report import (  # noqa: E402
    classification_report,
    format_report_table,
    save_confusion_figures,
)
from fashiongen.labeler.robust import AdversarialTraining  # noqa: E402
from fashiongen.model_folder import CARD_FILE, write_card  # noqa: E402
from fashiongen.schema import EXTRA_HEADS, LabelSchema  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402


@dataclass
class ClassifierTrainingConfig(training.TrainingConfig):
    kind = "classifier"
    out: Path = option(Path("runs") / "classifier" / "model",
                       "folder that receives classifier.keras, labels.json and model_card.json (the app's model "
                       "is fashiongen/pretrained/classifier)")
    epochs: int = option(15, "training epochs")
    batch_size: int = option(128, "images per step")
    arch: str = option(DEFAULT_ARCH, "model: compact CNN from scratch, paper = frozen MobileNetV2 + Dense(1024) "
                                     "head, mobilenet = MobileNetV2 alpha 0.35 from scratch", choices=ARCHITECTURES)
    heads: str = option("catalog", "catalog: a softmax head for every attribute of styles.csv; paper: the "
                                   "paper's sub-category and gender sigmoids (arch paper always)", choices=HEAD_SETS)
    shift: float = option(DEFAULT_SHIFT, "arch compact: the largest random shift in training, as a share of the "
                                         "image (0: flips only)")
    width: int = option(DEFAULT_WIDTH, "arch compact: filters of the first stage, doubled at each of the three "
                                       "later stages")
    anti_alias: bool = option(False, "arch compact: a fixed blur before every downsampling (Zhang 2019), so "
                                     "fine patterns do not fold into coarse features (for a perceptual classifier)")
    adversarial_epsilon: float = option(0.0, "train on adversarial images (one FGSM step from a random start, Wong "
                                             "et al. 2020) at most this many levels of 255 from each photo (0: off; "
                                             "needs --shift 0). Tried as train_generator.py's --perceptual-classifier: "
                                             "it rewarded the plaid more (docs/experiments/2026-12-07-plaid-probe.md)")
    backbone_weights: str | None = option("none", "MobileNetV2 archs: 'imagenet' (download), a local .h5 path, "
                                                  "or 'none'")
    learning_rate: float = option(2e-3, "Adam's initial learning rate, decayed along a cosine")
    paper_loop: bool = option(False, "arch paper: push every image through the frozen backbone every epoch, as "
                                     "the paper does, instead of computing the backbone features once")
    calibrate: bool = option(True, "after training, fit each head's temperature and the not-a-product detector "
                                   "on the validation photos (as scripts/calibrate_classifier.py does)", negatable=True)
    outlier_method: str = option(DEFAULT_METHOD, "the not-a-product score shipped (each one is measured; auto keeps "
                                                 "the one flagging most non-product images)",
                                 choices=("auto", *METHODS))


def parse_args(argv: list[str] | None) -> ClassifierTrainingConfig:
    parser = training.training_parser(ClassifierTrainingConfig, __doc__)
    config = training.parse_training_config(parser, argv, ClassifierTrainingConfig)
    if config.backbone_weights.lower() == "none":
        config.backbone_weights = None
    if not 0 <= config.adversarial_epsilon < 255:  # NaN fails too
        parser.error(f"--adversarial-epsilon is in levels of 255, in [0, 255); got {config.adversarial_epsilon}")
    if config.adversarial_epsilon and config.arch == "compact" and config.shift > 0:
        parser.error("--adversarial-epsilon needs --shift 0: the random shift interpolates the moved pixels, "
                     "which blurs the perturbation")
    if config.adversarial_epsilon and config.arch == "paper" and not config.paper_loop:
        parser.error("--adversarial-epsilon moves the images, so arch paper needs --paper-loop (its cached "
                     "backbone features are of the unmoved ones)")
    if config.arch == "paper" and config.outlier_method == "energy":
        parser.error("--outlier-method energy needs softmax heads; arch paper has sigmoids")
    return config


def load_data(config: ClassifierTrainingConfig) -> SimpleNamespace:
    """The dataset, its label schema and labels, the split and the training rows used; checked
    to be enough before any model is built."""
    dataset = load_dataset(config.data_dir, cache_dir=config.cache_dir, progress=not config.quiet)
    split = make_split(config.split, dataset, config.split_seed)
    train_rows = split.train[: config.limit]
    # the paper's two heads, or every head over the classes training can learn
    paper = config.arch == "paper" or config.heads == "paper"
    schema = LabelSchema.from_styles(dataset.styles, extra_heads=() if paper else EXTRA_HEADS,
                                     training_rows=dataset.styles.iloc[train_rows])
    print(training.data_report(dataset, split, train_rows))
    training.check_enough_data(config.data_dir, dataset, schema, split, train_rows)
    return SimpleNamespace(dataset=dataset, schema=schema, labels=dataset.labels(schema), split=split,
                           train_rows=train_rows)


def build_model(config: ClassifierTrainingConfig, strategy, data: SimpleNamespace) -> SimpleNamespace:
    """The classifier, and the part that trains: all of it, or with cached backbone features
    (arch paper without --paper-loop) only the head after the frozen backbone's `extractor`."""
    with strategy.scope():
        model = build_classifier(data.schema, config.arch, config.backbone_weights, width=config.width,
                                 shift=config.shift, sigmoids=config.heads == "paper", anti_alias=config.anti_alias)
        cached_features = config.arch == "paper" and not config.paper_loop
        extractor, head = split_at_features(model) if cached_features else (None, model)
        if config.adversarial_epsilon:
            head = AdversarialTraining(model, config.adversarial_epsilon / 255, seed=config.seed)
        # the paper: Adam at its default rate; ours: a cosine decay from --learning-rate
        steps = -(-len(data.train_rows) // config.batch_size) * config.epochs
        rate = 1e-3 if config.arch == "paper" else keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        compile_classifier(head, data.schema, rate, steps_per_execution=32 if cached_features else 1)
    return SimpleNamespace(model=model, head=head, extractor=extractor, cached_features=cached_features)


def fit(config: ClassifierTrainingConfig, strategy, net: SimpleNamespace, data: SimpleNamespace,
        best_weights: Path) -> keras.callbacks.History:
    """Train, then load the best epoch's weights."""
    verbose = 0 if config.quiet else 1
    inputs = data.dataset.images
    if net.cached_features:
        # frozen backbone: its features never change, so compute them once, not every epoch
        inputs = net.extractor.predict(ImageBatches(data.dataset.images, batch_size=256), verbose=verbose)
    replicas = strategy.num_replicas_in_sync
    history = net.head.fit(
        ImageBatches(inputs, data.labels, config.batch_size, indices=data.train_rows, shuffle=True, seed=config.seed,
                     replicas=replicas),
        validation_data=ImageBatches(inputs, data.labels, 256, indices=data.split.validation, replicas=replicas),
        epochs=config.epochs, verbose=verbose,
        callbacks=training.standard_callbacks(config.run_dir, best_weights, strategy=strategy),
        # ImageBatches shuffles by --seed; Keras' batch-order shuffle is unseeded (workers would disagree)
        shuffle=False,
    )
    training.load_best_weights(net.head, best_weights, config.out)
    report_worker(strategy, net.model)
    return history


def validation_report(scored: Labeler, data: SimpleNamespace) -> dict:
    """The new model and the one in --out are measured alike: this run's validation images, and the
    networks' own scores (a calibrated model in --out would otherwise be judged on other terms)."""
    validation = data.split.validation
    bare = Labeler(scored.model, scored.schema)
    return classification_report(data.labels[validation], bare.scores(data.dataset.images[validation]),
                                 data.schema)


def model_card(config: ClassifierTrainingConfig, argv: list[str], data: SimpleNamespace, net: SimpleNamespace,
               history: keras.callbacks.History, seconds: float, report: dict) -> dict:
    return {
        **training.card_basics(config, argv, data.dataset, data.split, data.train_rows),
        "backbone_weights": config.backbone_weights,
        "parameters": int(net.model.count_params()),
        "training": {
            "epochs": config.epochs, "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "seconds": round(seconds, 1), "cached_backbone_features": net.cached_features,
            "history": training.rounded_history(history),
        },
        "metrics": {"validation": {k: v for k, v in report.items() if k not in ("per_class", "confusion")}},
    }


def calibrate(config: ClassifierTrainingConfig, labeler: Labeler, data: SimpleNamespace, card: dict) -> Calibration:
    """Temperatures and the not-a-product detector, fitted on this run's split; their report goes
    into the card."""
    calibration, report = fit_shipped_calibration(labeler, data.dataset.images, data.labels, data.train_rows,
                                                  data.split.validation, config.outlier_method)
    card["metrics"].update(card_entries(report))
    print(calibration_summary(report))
    return calibration


def train(config: ClassifierTrainingConfig, argv: list[str]) -> dict:
    """Load, build, fit, evaluate, and save where keep-better says; returns the model card."""
    strategy = make_strategy(config.strategy, config.cpu_devices)
    use_worker_folders(strategy, config)
    training.lock_run_dir(config)
    data = load_data(config)
    previous = training.previous_model(config.out, Labeler.load,
                                       lambda old: training.schema_difference(old.schema, data.schema),
                                       config.replace)
    best_weights = training.prepare_run_dir(config)
    started = time.perf_counter()
    net = build_model(config, strategy, data)
    history = fit(config, strategy, net, data, best_weights)
    seconds = time.perf_counter() - started

    # a view made outside strategy.scope(): under MirroredStrategy, Keras' predict_on_batch feeds
    # the whole batch to every replica and returns replicas x N rows
    model = net.model
    report = validation_report(Labeler(keras.Model(model.input, model.output, name=model.name), data.schema), data)
    card = model_card(config, argv, data, net, history, seconds, report)
    destination = training.keep_better(config.out, config.run_dir, report["loss"],
                                       None if previous is None else validation_report(previous, data)["loss"],
                                       config.replace, len(data.split.validation))
    save_bundle(destination, model, data.schema, card)
    if config.calibrate:  # after the model is safe: a failure here loses no training
        calibration = calibrate(config, Labeler(keras.Model(model.input, model.output, name=model.name), data.schema),
                                data, card)
        save_calibration(destination, calibration)
        write_card(destination / CARD_FILE, card)
    (config.run_dir / "validation_report.json").write_text(json.dumps(report, indent=2) + "\n")
    save_confusion_figures(report, config.run_dir)
    print(format_report_table(report))
    print(f"saved {destination} ({seconds:.0f} s of training); TensorBoard logs in "
          f"{config.run_dir / 'tensorboard'}")
    return card


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        training.check_outputs(config)  # before the work, not after it
        training.check_resume(config)
        train(config, training.command_line(argv))
    except (DatasetError, ClassifierError, TrainingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the previous model in {config.out} is untouched; continue with --resume",
              file=sys.stderr)
        return 130
    finally:
        training.release_run_dir(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
