#!/usr/bin/env python
"""Train the conditional VAE generator on the dataset and save it with its model card.

Examples:
  python scripts/train_generator.py --data-dir ../shared/data/fashion-small --out runs/my-generator
  python scripts/train_generator.py --arch paper --epochs 10     # the paper's CVAE
  python scripts/train_generator.py --resume                     # continue an interrupted run

The model lands in --out only when training finished and was evaluated, and only when it has a
lower validation loss than the model already there, both measured on this run's validation
images, unless --replace (otherwise it goes to --run-dir/model).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Import this checkout's package even when another checkout is the one pip installed.
sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from fashiongen.training import common_arguments, parse_training_args

    shared = common_arguments("generator", "encoder.keras, decoder.keras, labels.json and model_card.json",
                              epochs=6, batch_size=64)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[shared])
    parser.add_argument("--arch", choices=("conv", "paper"), default="conv",
                        help="conv = convolutional CVAE with labels in encoder and decoder and KL warm-up (default); "
                             "paper = the paper's dense CVAE conditioned on the classifier's scores")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="classifier folder whose label schema (and, for --arch paper, scores) the generator "
                             "uses (default: the shipped fashiongen/pretrained/classifier)")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="initial learning rate: RMSprop for paper, Adam with cosine decay for conv "
                             "(default: 0.001)")
    parser.add_argument("--latent-dim", type=int, default=None, help="latent code size (default: 100 paper, 128 conv)")
    parser.add_argument("--kl-warmup-epochs", type=float, default=0.25,
                        help="conv: epochs over which the KL weight grows from 0 to 1 (default: 0.25; a long "
                             "warm-up lets the codes drift far from N(0, I) before the KL term holds them)")
    parser.add_argument("--judge-weight", type=float, default=0.0,
                        help="conv: weight of the label-consistency term, the judge's binary cross-entropy on "
                             "images decoded from prior codes with label pairs drawn uniformly from those of the "
                             "training data (default: 0, off)")
    parser.add_argument("--judge-loss", choices=("bce", "heads"), default="bce",
                        help="the label-consistency loss: bce = binary cross-entropy over all 25 scores "
                             "(default); heads = cross-entropy per head (sub-category, gender), scores normalised "
                             "within each head, so gender weighs as much as sub-category")
    parser.add_argument("--judge", type=Path, default=None,
                        help="classifier folder that judges label consistency (default: --classifier). An "
                             "independently trained one keeps the evaluation's classifier out of training")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start from the weights of this saved generator folder (fine-tuning), e.g. "
                             "fashiongen/pretrained/generator")
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="with --init-from: train the decoder only, so the encoder's codes (and the latent "
                             "prior fitted on them) stay where they are")
    args = parse_training_args(parser, argv, "generator")
    if args.freeze_encoder and not args.init_from:
        parser.error("--freeze-encoder needs --init-from (a trained encoder to keep)")
    return args


def train(args: argparse.Namespace) -> dict:
    import json

    import keras

    from fashiongen import training
    from fashiongen.batches import ImageBatches
    from fashiongen.dataset import load_dataset
    from fashiongen.distribute import make_strategy, report_worker, use_worker_folders
    from fashiongen.errors import GeneratorError
    from fashiongen.generator.cvae import build_generator
    from fashiongen.generator.generator import Generator
    from fashiongen.generator.judge import LabelConsistency
    from fashiongen.generator.quality import reconstruction_metrics
    from fashiongen.labeler.labeler import Labeler
    from fashiongen.model_folder import LABELER
    from fashiongen.splits import make_split

    strategy = make_strategy(args.strategy, args.cpu_devices)
    use_worker_folders(strategy, args)
    labeler = Labeler.load(args.classifier or LABELER.shipped)
    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir, progress=not args.quiet)
    schema = labeler.schema
    if args.arch == "paper":
        conditions = labeler.scores(dataset.images)  # the paper conditions on the classifier's predictions
    else:
        conditions = schema.encode_frame(dataset.styles)  # one-hot, as at generation time
    split = make_split(args.split, dataset, args.seed)
    train_rows = split.train[: args.limit]
    print(training.data_report(dataset, split, train_rows))
    training.check_enough_data(args.data_dir, dataset, schema, split, train_rows)
    previous = training.previous_model(args.out, Generator.load,
                                       lambda old: training.schema_difference(old.schema, schema), args.replace)
    best_weights = training.prepare_run_dir(args.run_dir, args.resume)
    steps_per_epoch = -(-len(train_rows) // args.batch_size)

    with strategy.scope():
        start = Generator.load(args.init_from) if args.init_from else None
        if start is not None and (start.arch != args.arch or start.schema != schema):
            raise GeneratorError(f"{args.init_from} is a {start.arch} generator with another schema or "
                                     f"architecture than --arch {args.arch}")
        judge = judge_pairs = judge_prior = None
        judge_command = None  # how the judge was made, for the card: a generator is reproducible with it
        if args.judge_weight > 0:
            judge_labeler = Labeler.load(args.judge) if args.judge else labeler
            judge = judge_labeler.as_judge(schema, str(args.judge))
            judge_command = judge_labeler.card.get("command")
            # a warm start's fitted prior gives the judged pairs and their codes, as generation draws them
            judge_prior = start.prior if start is not None else None
            if judge_prior is None:
                judge_pairs = training_pairs(conditions[train_rows], len(schema.sub_categories))
        model = build_generator(args.arch, schema.size, args.latent_dim, seed=args.seed,
                                    # a warm start already has its codes near N(0, I): no warm-up
                                    kl_warmup_steps=0 if args.init_from else int(args.kl_warmup_epochs * steps_per_epoch),
                                    judge=None if judge is None else LabelConsistency(
                                        judge, args.judge_weight, judge_pairs, judge_prior,
                                        len(schema.sub_categories) if args.judge_loss == "heads" else None))
        if start is not None:
            model.encoder.set_weights(start.encoder.get_weights())
            model.decoder.set_weights(start.decoder.get_weights())
            model.encoder.trainable = not args.freeze_encoder
        if args.arch == "paper":
            optimizer = keras.optimizers.RMSprop(args.learning_rate)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps_per_epoch * args.epochs)
            optimizer = keras.optimizers.Adam(schedule)
        model.compile(optimizer=optimizer)

    started = time.perf_counter()
    replicas = strategy.num_replicas_in_sync
    history = model.fit(
        ImageBatches(dataset.images, conditions, args.batch_size, indices=train_rows, shuffle=True, seed=args.seed,
                     replicas=replicas),
        validation_data=ImageBatches(dataset.images, conditions, 256, indices=split.validation, replicas=replicas),
        epochs=args.epochs, callbacks=training.standard_callbacks(args.run_dir, best_weights, strategy=strategy),
        verbose=0 if args.quiet else 1,
        # ImageBatches shuffles by --seed; Keras' batch-order shuffle is unseeded (workers would disagree)
        shuffle=False,
    )
    seconds = time.perf_counter() - started
    training.load_best_weights(model, best_weights, args.out)
    report_worker(strategy, model.encoder, model.decoder)
    keras.utils.set_random_seed(args.seed)  # the validation numbers sample codes: make them repeatable
    validation = model.evaluate(ImageBatches(dataset.images, conditions, 256, indices=split.validation,
                                             replicas=replicas), verbose=0, return_dict=True)
    card = {
        **training.card_basics("generator", args.arch, args.argv, args.data_dir, dataset, split, train_rows),
        "parameters": {"encoder": int(model.encoder.count_params()), "decoder": int(model.decoder.count_params())},
        "latent_dim": int(model.latent_dim),
        "conditioning": "classifier scores" if args.arch == "paper" else "one-hot labels",
        "label_consistency_weight": args.judge_weight,
        "label_consistency_loss": args.judge_loss if args.judge_weight > 0 else None,
        "label_consistency_judge": str(args.judge or args.classifier or "fashiongen/pretrained/classifier")
        if args.judge_weight > 0 else None,
        "label_consistency_judge_command": judge_command,
        "initialised_from": str(args.init_from) if args.init_from else None,
        # the warm start's own recipe: with it, a fine-tuned generator can be rebuilt from scratch
        "initialised_from_command": start.card.get("command") if start is not None else None,
        "encoder_frozen": args.freeze_encoder,
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                     "kl_warmup_epochs": args.kl_warmup_epochs if args.arch == "conv" else 0,
                     "seconds": round(seconds, 1), "history": training.rounded_history(history)},
        "metrics": {"validation": {"val_loss": validation["loss"],
                                   "reconstruction_loss": validation["reconstruction_loss"],
                                   "latent_loss": validation["latent_loss"],
                                   "rounded_accuracy": validation["rounded_accuracy"]}},
    }
    generator = Generator(model.encoder, model.decoder, schema, args.arch, card)
    if args.arch == "conv":  # the paper draws codes from N(0, I); ours from each label pair's own region
        prior = generator.fit_prior(dataset.images[train_rows], conditions[train_rows])
        card["latent_prior"] = {**prior.describe(), "fitted_on": "the training rows above"}
    new_loss = old_loss = None
    if previous is not None:
        validation_images = dataset.images[split.validation]

        def comparison_loss(scored: Generator) -> float:
            """The new model and the one in --out are measured alike: this run's validation images,
            conditioned as each one's arch wants, codes sampled with the same seed."""
            scored_conditions = (labeler.scores(validation_images) if scored.arch == "paper"
                                 else schema.encode_frame(dataset.styles.iloc[split.validation]))
            return reconstruction_metrics(scored, validation_images, scored_conditions,
                                                  seed=args.seed)["val_loss"]

        # views made outside strategy.scope(): under MirroredStrategy predict_on_batch gives a copy per replica
        new_loss = comparison_loss(Generator(keras.Model(model.encoder.input, model.encoder.output),
                                                 keras.Model(model.decoder.input, model.decoder.output),
                                                 schema, args.arch))
        old_loss = comparison_loss(previous)
    destination = training.keep_better(args.out, args.run_dir, new_loss, old_loss, args.replace,
                                       len(split.validation))
    generator.save(destination)
    (args.run_dir / "validation.json").write_text(json.dumps(validation, indent=2) + "\n")
    print(f"validation: loss {validation['loss']:.4f} (paper's definition), rounded accuracy "
          f"{validation['rounded_accuracy']:.4f}; saved {destination} ({seconds:.0f} s of training)")
    return card


def training_pairs(conditions, n_sub_categories: int):
    """The distinct one-hot label pairs among training conditions whose sub-category is in the schema."""
    import numpy as np

    known = conditions[conditions[:, :n_sub_categories].sum(axis=1) > 0]
    return np.unique(known, axis=0)


def main(argv: list[str] | None = None) -> int:
    from fashiongen.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    args = parse_args(argv)
    from fashiongen.errors import ClassifierError, DatasetError, GeneratorError, TrainingError

    try:
        train(args)
    except (DatasetError, ClassifierError, GeneratorError, TrainingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} is untouched; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
