#!/usr/bin/env python
"""Train the conditional VAE generator on the dataset and save it with its model card.

Examples:
  python scripts/train_generator.py --data-dir ../shared/data/fashion-small --out runs/my-generator
  python scripts/train_generator.py --arch paper --epochs 10     # the paper's CVAE
  python scripts/train_generator.py --resume                     # continue an interrupted run
  python scripts/train_generator.py --arch vaegan --out runs/sharp
      # the adversarially trained decoder, conditioned on colour too

The model lands in --out only when training finished and was evaluated, and only when it has a
lower validation loss than the model already there, both measured on this run's validation
images, unless --replace (otherwise it goes to --run-dir/model). A vaegan is not better for a lower
validation loss (its adversarial term trades some of it for sharpness): it needs an empty --out or
--replace, and scripts/evaluate_generator.py to compare.
"""

from __future__ import annotations

import filecmp
import json
import math
import sys
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # before Keras is imported below: its start-up chatter would spoil one-line errors

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fashiongen import training  # noqa: E402
from fashiongen.batches import ImageBatches  # noqa: E402
from fashiongen.config import option  # noqa: E402
from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.distribute import make_strategy, report_worker, use_worker_folders  # noqa: E402
from fashiongen.errors import ClassifierError, DatasetError, GeneratorError, TrainingError  # noqa: E402
from fashiongen.generator.architectures import OPTIONAL_LAYERS, optional_layers  # noqa: E402
from fashiongen.generator.cvae import build_generator  # noqa: E402
from fashiongen.generator.generator import COLOUR, Generator  # noqa: E402
from fashiongen.generator.judge import LabelConsistency  # noqa: E402
from fashiongen.generator.perceptual import MAX_BLUR, COMPACT_LAYERS, PerceptualDistance, random_features  # noqa: E402
from fashiongen.generator.quality import reconstruction_metrics  # noqa: E402
from fashiongen.generator.snapshots import EpochGrids  # noqa: E402
from fashiongen.generator.vaegan import AdversarialConfig, AdversarialStart  # noqa: E402
from fashiongen.labeler.labeler import MODEL_FILE, Labeler  # noqa: E402
from fashiongen.model_folder import LABELER  # noqa: E402
from fashiongen.schema import MIN_CLASS_PHOTOS, LabelSchema  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402


@dataclass
class GeneratorTrainingConfig(training.TrainingConfig, AdversarialConfig):
    kind = "generator"
    out: Path = option(Path("runs") / "generator" / "model",
                       "folder that receives encoder.keras, decoder.keras, labels.json and model_card.json (the "
                       "app's model is fashiongen/pretrained/generator)")
    epochs: int = option(6, "training epochs")
    batch_size: int = option(64, "images per step")
    arch: str = option("conv", "conv = convolutional CVAE with labels in encoder and decoder and KL warm-up; "
                               "paper = the paper's dense CVAE conditioned on the classifier's scores; "
                               "vaegan = conv's encoder, an upsampling decoder and a conditional patch "
                               "discriminator (fashiongen/generator/vaegan.py)",
                       choices=("conv", "paper", "vaegan"))
    colour: bool = option(True, "conv and vaegan: also condition on baseColour, over the colours of the "
                                "--classifier's colour head, or without one, the colours with 50+ training "
                                "photos", negatable=True)
    classifier: Path | None = option(None, "classifier folder whose label schema (and, for --arch paper, scores) "
                                           "the generator uses", default_text="the shipped fashiongen/pretrained/"
                                                                              "classifier")
    learning_rate: float = option(1e-3, "initial learning rate: RMSprop for paper, Adam with cosine decay for conv")
    latent_dim: int | None = option(None, "latent code size", default_text="100 paper, 128 conv")
    kl_weight: float = option(1.0, "conv and vaegan: weight of the KL term in the objective (the reported loss "
                                   "always weighs it 1). Below 1 the codes carry more of each photo: sharper "
                                   "reconstructions, codes further from N(0, I) (the latent prior follows them)")
    kl_warmup_epochs: float = option(0.25, "conv and vaegan: epochs over which the KL weight grows from 0 to "
                                           "--kl-weight (a long warm-up lets the codes drift far from N(0, I) "
                                           "before the KL term holds them)")
    judge_weight: float = option(0.0, "conv: weight of the label-consistency term, the judge's binary "
                                      "cross-entropy on images decoded from prior codes with label pairs drawn "
                                      "uniformly from those of the training data", default_text="0, off")
    judge_loss: str = option("bce", "the label-consistency loss: bce = binary cross-entropy over all 25 scores; "
                                    "heads = cross-entropy per head (sub-category, gender), scores normalised "
                                    "within each head, so gender weighs as much as sub-category",
                             choices=("bce", "heads"))
    judge: Path | None = option(None, "classifier folder that judges label consistency. An independently trained "
                                      "one keeps the evaluation's classifier out of training",
                                default_text="--classifier")
    init_from: Path | None = option(None, "start from the weights of this saved generator folder (fine-tuning), "
                                          "e.g. fashiongen/pretrained/generator", default_text="")
    perceptual_classifier: Path | None = option(None, "vaegan, with --perceptual-weight: the compact classifier "
                                                      "folder whose features the perceptual distance compares; "
                                                      "not the shipped classifier, which evaluates generators",
                                                default_text="")
    perceptual_random: bool = option(False, "vaegan, with --perceptual-weight, instead of --perceptual-classifier: "
                                             "the compact classifier's convolutions with random weights (drawn "
                                             "from --seed + 2), features that know nothing of the labels")
    decoder_noise: bool = option(False, "vaegan: a map of Gaussian noise added to every decoder block, scaled by "
                                        "learned per-channel weights that start at zero (StyleGAN's noise inputs), "
                                        "so fine texture need not repeat over the upsampling grid. Tried against the "
                                        "perceptual term's plaid: it painted grain instead "
                                        "(docs/experiments/2026-12-07-plaid-probe.md)")
    decoder_refine: bool = option(False, "vaegan: a residual block of two 3x3 convolutions after each of the "
                                         "decoder's two finest blocks, the second starting at zero so a warm start "
                                         "computes what it did: more capacity where detail is drawn, at about 95 M "
                                         "multiply-adds more per image (the plain decoder's: 85 M). Tried for one "
                                         "epoch: barely sharper, and not reliably better than without it "
                                         "(docs/experiments/2026-12-07-refinement-repeat.md)")
    freeze_encoder: bool = option(False, "with --init-from: train the decoder only, so the encoder's codes (and "
                                         "the latent prior fitted on them) stay where they are")


def is_shipped_classifier(folder: Path) -> bool:
    """The shipped classifier's folder, or another holding a copy of its weights."""
    weights, shipped = folder / MODEL_FILE, LABELER.shipped / MODEL_FILE
    return folder.resolve() == LABELER.shipped.resolve() or (
        weights.is_file() and shipped.is_file() and filecmp.cmp(weights, shipped, shallow=False))


def parse_args(argv: list[str] | None) -> GeneratorTrainingConfig:
    parser = training.training_parser(GeneratorTrainingConfig, __doc__)
    config = training.parse_training_config(parser, argv, GeneratorTrainingConfig)
    if config.freeze_encoder and not config.init_from:
        parser.error("--freeze-encoder needs --init-from (a trained encoder to keep)")
    if config.kl_weight <= 0:
        parser.error(f"--kl-weight must be above 0 (0 would leave the codes unbounded), got {config.kl_weight:g}")
    if config.arch == "paper" and config.kl_weight != 1.0:
        parser.error("--kl-weight works with --arch conv and vaegan: the paper's model stays as the paper specifies it")
    if config.perceptual_weight < 0 or config.adversarial_ramp_epochs < 0:
        parser.error("--perceptual-weight and --adversarial-ramp-epochs cannot be negative")
    vaegan_weights = {"--spectral-excess-weight": config.spectral_excess_weight, "--r1-weight": config.r1_weight}
    for flag, value in {**vaegan_weights, "--spectral-excess-margin": config.spectral_excess_margin}.items():
        if not (value >= 0 and math.isfinite(value)):  # NaN fails too
            parser.error(f"{flag} must be a finite number from 0, got {value:g}")
    flags = sorted(decoder_flags(config))
    if flags and config.arch != "vaegan":
        parser.error(f"{' and '.join(flags)} {'need' if len(flags) > 1 else 'needs'} --arch vaegan")
    for flag, value in vaegan_weights.items():
        if value and config.arch != "vaegan":
            parser.error(f"{flag} needs --arch vaegan")
    band_changed = (config.spectral_excess_margin, config.spectral_excess_finest) != (
        AdversarialConfig.spectral_excess_margin, AdversarialConfig.spectral_excess_finest)
    if band_changed and not config.spectral_excess_weight:
        parser.error("--spectral-excess-margin and --spectral-excess-finest need --spectral-excess-weight")
    if config.perceptual_blocks != 4 and config.perceptual_weight == 0:
        parser.error("--perceptual-blocks needs --perceptual-weight")
    if config.perceptual_shift < 0:
        parser.error(f"--perceptual-shift cannot be negative, got {config.perceptual_shift}")
    if config.perceptual_shift and config.perceptual_weight == 0:
        parser.error("--perceptual-shift needs --perceptual-weight")
    if not 0 <= config.perceptual_blur <= MAX_BLUR:  # NaN fails too; wider would pad past the image
        parser.error(f"--perceptual-blur must be 0-{MAX_BLUR:g} pixels, got {config.perceptual_blur:g}")
    if config.perceptual_blur and config.perceptual_weight == 0:
        parser.error("--perceptual-blur needs --perceptual-weight")
    perceptual = config.perceptual_weight > 0
    features = (config.perceptual_classifier is not None) + config.perceptual_random
    if (perceptual and features != 1) or (features and not perceptual) or (perceptual and config.arch != "vaegan"):
        parser.error("--perceptual-weight needs --arch vaegan and one of --perceptual-classifier and "
                     "--perceptual-random, and they need the weight")
    if config.perceptual_classifier is not None and is_shipped_classifier(config.perceptual_classifier):
        parser.error("--perceptual-classifier must not be the shipped classifier: it evaluates generators, and "
                     "would grade what it taught (train one: train_classifier.py --arch compact --split grouped)")
    if config.arch == "vaegan" and config.judge_weight > 0:
        parser.error("--judge-weight works with --arch conv only: the vaegan's discriminator sees the labels itself")
    return config


def load_data(args: GeneratorTrainingConfig, labeler: Labeler) -> SimpleNamespace:
    """The dataset, each image's conditions, the split and the training rows used; checked to be
    enough before any model is built."""
    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir, progress=not args.quiet)
    split = make_split(args.split, dataset, args.split_seed)
    train_rows = split.train[: args.limit]
    schema = generator_schema(args, labeler.schema, dataset.styles.iloc[train_rows])
    if args.arch == "paper":
        # the paper conditions on the classifier's 25 predictions (a catalog labeler's first columns)
        conditions = paper_scores(labeler, dataset.images)
    else:
        conditions = schema.encode_frame(dataset.styles)  # one-hot, as at generation time
    print(training.data_report(dataset, split, train_rows))
    training.check_enough_data(args.data_dir, dataset, schema, split, train_rows)
    return SimpleNamespace(dataset=dataset, schema=schema, conditions=conditions, split=split, train_rows=train_rows)


def generator_schema(args: GeneratorTrainingConfig, labeler_schema: LabelSchema,
                     training_styles: pd.DataFrame | None = None) -> LabelSchema:
    """The heads the generator is conditioned on: the paper's two, and with --colour baseColour over
    the labeler's colour head, or, for a labeler without one (the shipped one), over the colours a
    catalog labeler trained on `training_styles` would learn (LabelSchema.from_styles' rule). The
    paper's model takes the labeler's 25 scores, nothing else."""
    if args.arch == "paper" or not args.colour:
        return labeler_schema.paper
    colours = labeler_schema.heads.get(COLOUR)
    if colours is None and training_styles is not None:
        colours = LabelSchema.from_styles(training_styles, extra_heads=(COLOUR,)).heads.get(COLOUR)
    if colours is None:
        print(f"note: neither {args.classifier or LABELER.shipped} nor the training rows give two {COLOUR} "
              f"classes of {MIN_CLASS_PHOTOS}+ photos: no colour control")
        return labeler_schema.paper
    return LabelSchema(labeler_schema.sub_categories, labeler_schema.genders, ((COLOUR, colours),))


def build_model(args: GeneratorTrainingConfig, strategy, labeler: Labeler, data: SimpleNamespace) -> SimpleNamespace:
    """The compiled CVAE (warm-started from --init-from), the warm start and the judge's command."""
    schema, conditions, train_rows = data.schema, data.conditions, data.train_rows
    steps_per_epoch = -(-len(train_rows) // args.batch_size)
    with strategy.scope():
        start = Generator.load(args.init_from) if args.init_from else None
        problem = warm_start_problem(start, args.arch, schema, decoder_flags(args)) if start is not None else None
        if problem:
            raise GeneratorError(f"--init-from {args.init_from}: {problem}")
        judge = judge_pairs = judge_prior = None
        judge_command = None  # how the judge was made, for the card: a generator is reproducible with it
        if args.judge_weight > 0:
            judge_labeler = Labeler.load(args.judge) if args.judge else labeler
            judge = judge_labeler.as_judge(schema, str(args.judge))
            judge_command = judge_labeler.card.get("command")
            # a warm start's fitted prior gives the judged pairs and their codes, as generation draws them
            # (its Gaussians: a residual kernel is for generation only)
            judge_prior = start.prior if start is not None else None
            if judge_prior is None:
                judge_pairs = training_pairs(conditions[train_rows], len(schema.sub_categories))
        perceptual = perceptual_command = None
        if args.perceptual_weight > 0:
            if args.perceptual_random:
                network = random_features(args.seed + 2)  # not --seed itself, nor the shift's + 1
            else:
                perceptual_labeler = Labeler.load(args.perceptual_classifier)
                network, perceptual_command = perceptual_labeler.model, perceptual_labeler.card.get("command")
            perceptual = PerceptualDistance(network, COMPACT_LAYERS[:args.perceptual_blocks],
                                            shift=args.perceptual_shift, seed=args.seed + 1,  # not the model's stream
                                            blur=args.perceptual_blur)
        # a warm start's prior draws the codes of the images the discriminator judges, as generation does
        steps = lambda epochs: int(epochs * steps_per_epoch)  # noqa: E731
        adversarial = (dict(adversarial=args, adversarial_start=steps(args.adversarial_start_epochs),
                            adversarial_ramp=steps(args.adversarial_ramp_epochs), perceptual=perceptual,
                            prior=start.prior if start is not None else None,
                            **{_setting(flag): True for flag in decoder_flags(args)})
                       if args.arch == "vaegan" else {})
        model = build_generator(args.arch, schema.size, args.latent_dim, seed=args.seed, kl_weight=args.kl_weight,
                                kl_warmup_steps=steps(kl_warmup_epochs(args)),
                                judge=None if judge is None else LabelConsistency(
                                    judge, args.judge_weight, judge_pairs, judge_prior,
                                    len(schema.sub_categories) if args.judge_loss == "heads" else None),
                                **adversarial)
        if start is not None:
            transfer_weights(start.encoder, model.encoder)
            if start.arch == args.arch:  # a vaegan warm-started from a conv generator keeps its new decoder
                transfer_weights(start.decoder, model.decoder)
            model.encoder.trainable = not args.freeze_encoder
        if args.arch == "paper":
            optimizer = keras.optimizers.RMSprop(args.learning_rate)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps_per_epoch * args.epochs)
            optimizer = keras.optimizers.Adam(schedule)
        if args.arch == "vaegan":
            # beta_1 = 0.5: the usual choice for GANs' two-player steps (and latent diffusion's)
            model.compile(optimizer=optimizer, discriminator_optimizer=keras.optimizers.Adam(
                args.discriminator_learning_rate, beta_1=0.5, beta_2=0.9))
        else:
            model.compile(optimizer=optimizer)
    return SimpleNamespace(model=model, start=start, judge_command=judge_command, perceptual_command=perceptual_command)


def kl_warmup_epochs(args: GeneratorTrainingConfig) -> float:
    """The KL warm-up the run has: none for the paper's model (it has no warm-up) nor for a warm
    start (its codes are already near N(0, I))."""
    return 0.0 if args.arch == "paper" or args.init_from else args.kl_warmup_epochs


def _setting(flag: str) -> str:
    """The config field (and build_generator option) of a flag: --decoder-noise -> decoder_noise."""
    return flag.removeprefix("--").replace("-", "_")


def decoder_flags(args: GeneratorTrainingConfig) -> set[str]:
    """The flags of the optional decoder layers (architectures.OPTIONAL_LAYERS) this run adds."""
    return {flag for flag in OPTIONAL_LAYERS.values() if getattr(args, _setting(flag))}


def warm_start_problem(start: Generator, arch: str, schema: LabelSchema,
                       flags: AbstractSet[str] = frozenset()) -> str | None:
    """Why `start` cannot warm-start an `arch` generator of `schema`, or None. It can when it has
    the same architecture, or is a conv generator starting a vaegan (which shares its encoder), and
    its labels are the schema's or the schema's without the colour head (which then starts at zero),
    and its decoder's optional layers are among those the run's `flags` add (a run may add ones the
    start lacks: they start out changing nothing)."""
    if start.arch != arch and (start.arch, arch) != ("conv", "vaegan"):
        return f"it is a {start.arch} generator, which cannot start --arch {arch}"
    missing = sorted(set(optional_layers(start.decoder).values()) - flags)
    if missing:
        return f"its decoder has optional layers: add {' '.join(missing)}"
    if start.schema not in (schema, schema.paper):
        return "its labels are not this run's (nor this run's without the colour head)"
    return None


def transfer_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy `source`'s weights into `target` of the same layers. A target conditioned on more
    labels (a colour head after the paper's two) has more rows in the kernels of the layers that
    take the labels, which come last in their input: those rows start at zero, so the target
    computes exactly what the source did until training moves them. So do a target decoder's
    optional layers (`--decoder-noise`, `--decoder-refine`) that `source` lacks: they keep their
    initial weights, which leave the output unchanged."""
    sources = optional_layers(source)
    missing = sources.keys() - optional_layers(target).keys()
    if missing:
        flags = " ".join(sorted({sources[name] for name in missing}))
        raise GeneratorError(f"{source.name} has optional layers ({flags}); this run's decoder lacks them")
    fresh = optional_layers(target).keys() - {layer.name for layer in source.layers}
    variables = [variable for layer in target.layers if layer.name not in fresh for variable in layer.weights]
    pairs = []  # every shape checked before any variable changes
    for old, variable in zip(source.get_weights(), variables, strict=True):
        new = tuple(variable.shape)
        if old.shape != new:
            if old.ndim != 2 or old.shape[1:] != new[1:] or old.shape[0] > new[0]:
                raise GeneratorError(f"a weight of {source.name} is {old.shape}, not {new}")
            old = np.concatenate([old, np.zeros((new[0] - old.shape[0],) + old.shape[1:], old.dtype)])
        pairs.append((variable, old))
    for variable, value in pairs:
        variable.assign(value)


def fit(args: GeneratorTrainingConfig, strategy, model: keras.Model, data: SimpleNamespace,
        best_weights: Path) -> tuple[keras.callbacks.History, dict]:
    """Train, load the best epoch's weights, and measure them on the validation rows."""
    replicas = strategy.num_replicas_in_sync
    history = model.fit(
        ImageBatches(data.dataset.images, data.conditions, args.batch_size, indices=data.train_rows, shuffle=True,
                     seed=args.seed, replicas=replicas),
        validation_data=ImageBatches(data.dataset.images, data.conditions, 256, indices=data.split.validation,
                                     replicas=replicas),
        # a vaegan keeps its last epoch: its validation loss rises as the adversarial term sharpens it
        epochs=args.epochs, callbacks=training.standard_callbacks(
            args.run_dir, best_weights, monitor=None if args.arch == "vaegan" else "val_loss", strategy=strategy)
        + [snapshot_grids(args, data)] + ([AdversarialStart(), keras.callbacks.TerminateOnNaN()]
                                          if args.arch == "vaegan" else []),
        verbose=0 if args.quiet else 1,
        # ImageBatches shuffles by --seed; Keras' batch-order shuffle is unseeded (workers would disagree)
        shuffle=False,
    )
    training.load_best_weights(model, best_weights, args.out)
    report_worker(strategy, model.encoder, model.decoder)
    keras.utils.set_random_seed(args.seed)  # the validation numbers sample codes: make them repeatable
    validation = model.evaluate(ImageBatches(data.dataset.images, data.conditions, 256, indices=data.split.validation,
                                             replicas=replicas), verbose=0, return_dict=True)
    if not math.isfinite(validation["loss"]):  # a vaegan keeps its last epoch, finite or not
        raise TrainingError(f"training diverged (validation loss {validation['loss']}), so {args.out} is unchanged; "
                            "try a lower --learning-rate or --adversarial-weight")
    return history, validation


def snapshot_grids(args: GeneratorTrainingConfig, data: SimpleNamespace) -> EpochGrids:
    """A grid per epoch in --run-dir/grids: the 8 commonest training label rows, and 8 validation
    photos with their reconstructions."""
    rows, counts = np.unique(data.conditions[data.train_rows], axis=0, return_counts=True)
    common = rows[np.argsort(-counts, kind="stable")[:8]]
    photos = data.split.validation[:8]
    return EpochGrids(args.run_dir, common, data.dataset.images[photos], data.conditions[photos], seed=args.seed)


def model_card(args: GeneratorTrainingConfig, argv: list[str], data: SimpleNamespace, net: SimpleNamespace,
               history: keras.callbacks.History, validation: dict, seconds: float) -> dict:
    model, start, judge_command = net.model, net.start, net.judge_command
    return {
        **training.card_basics(args, argv, data.dataset, data.split, data.train_rows),
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
        # how the perceptual classifier was made: the generator is reproducible with it
        "perceptual_classifier_command": net.perceptual_command,
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                     "kl_weight": args.kl_weight,
                     "kl_warmup_epochs": kl_warmup_epochs(args),
                     "seconds": round(seconds, 1), "history": training.rounded_history(history)},
        "metrics": {"validation": {"val_loss": validation["loss"],
                                   "reconstruction_loss": validation["reconstruction_loss"],
                                   "latent_loss": validation["latent_loss"],
                                   "rounded_accuracy": validation["rounded_accuracy"]}},
    }


def comparison_loss(args: GeneratorTrainingConfig, scored: Generator, labeler: Labeler,
                    data: SimpleNamespace) -> float:
    """The new model and the one in --out are measured alike: this run's validation images,
    conditioned as each one's arch wants, codes sampled with the same seed."""
    validation_images = data.dataset.images[data.split.validation]
    scored_conditions = (paper_scores(labeler, validation_images) if scored.arch == "paper"
                         else data.schema.encode_frame(data.dataset.styles.iloc[data.split.validation]))
    return reconstruction_metrics(scored, validation_images, scored_conditions, seed=args.seed)["val_loss"]


def train(args: GeneratorTrainingConfig, argv: list[str]) -> dict:
    """Load, build (or warm-start), fit, evaluate, and save where keep-better says; returns the card."""
    strategy = make_strategy(args.strategy, args.cpu_devices)
    use_worker_folders(strategy, args)
    training.lock_run_dir(args)
    labeler = Labeler.load(args.classifier or LABELER.shipped)
    data = load_data(args, labeler)
    schema = data.schema
    previous = training.previous_model(args.out, Generator.load,
                                       lambda old: training.schema_difference(old.schema, schema), args.replace)
    if args.arch == "vaegan" and previous is not None:
        if not args.replace:
            raise TrainingError(f"--out {args.out} holds a generator, and a vaegan cannot be judged better by its "
                                "validation loss; compare them with scripts/evaluate_generator.py, then pass "
                                "--replace to overwrite it, or choose another --out")
        previous = None  # --replace: nothing to compare with
    best_weights = training.prepare_run_dir(args)
    net = build_model(args, strategy, labeler, data)
    model = net.model
    started = time.perf_counter()
    history, validation = fit(args, strategy, model, data, best_weights)
    seconds = time.perf_counter() - started
    card = model_card(args, argv, data, net, history, validation, seconds)
    generator = Generator(model.encoder, model.decoder, schema, args.arch, card)
    if args.arch != "paper" and args.freeze_encoder and net.start.prior is not None:
        # the codes are the warm start's, so is its prior (refined, perhaps); the colours are counted anew
        generator.prior = net.start.prior.with_colours(data.conditions[data.train_rows])
        card["latent_prior"] = {**net.start.card.get("latent_prior", {}), "kept_from": str(args.init_from),
                                "colours_counted_on": "the training rows above"}
    elif args.arch != "paper":  # the paper draws codes from N(0, I); ours from each label pair's own region
        prior = generator.fit_prior(data.dataset.images[data.train_rows], data.conditions[data.train_rows])
        card["latent_prior"] = {**prior.describe(), "fitted_on": "the training rows above"}
    new_loss = old_loss = None
    if previous is not None:
        # views made outside strategy.scope(): under MirroredStrategy predict_on_batch gives a copy per replica
        new_loss = comparison_loss(args, Generator(keras.Model(model.encoder.input, model.encoder.output),
                                                   keras.Model(model.decoder.input, model.decoder.output),
                                                   schema, args.arch), labeler, data)
        old_loss = comparison_loss(args, previous, labeler, data)
    destination = training.keep_better(args.out, args.run_dir, new_loss, old_loss, args.replace,
                                       len(data.split.validation))
    generator.save(destination)
    (args.run_dir / "validation.json").write_text(json.dumps(validation, indent=2) + "\n")
    print(f"validation: loss {validation['loss']:.4f} (paper's definition), rounded accuracy "
          f"{validation['rounded_accuracy']:.4f}; saved {destination} ({seconds:.0f} s of training)")
    return card


def paper_scores(labeler: Labeler, images) -> np.ndarray:
    """The labeler's scores for the paper's two heads: its first columns, whatever heads follow."""
    return labeler.scores(images)[:, : labeler.schema.paper.size]


def training_pairs(conditions, n_sub_categories: int):
    """The distinct one-hot label pairs among training conditions whose sub-category is in the schema."""
    known = conditions[conditions[:, :n_sub_categories].sum(axis=1) > 0]
    return np.unique(known, axis=0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        training.check_outputs(args)  # before the work, not after it
        training.check_resume(args)
        train(args, training.command_line(argv))
    except (DatasetError, ClassifierError, GeneratorError, TrainingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} is untouched; continue with --resume", file=sys.stderr)
        return 130
    finally:
        training.release_run_dir(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
