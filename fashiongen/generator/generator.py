"""`Generator`: a trained CVAE's encoder, decoder, label schema and latent prior, as users and the app call it."""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from fashiongen.batches import to_unit_float
from fashiongen.errors import GeneratorError
from fashiongen.generator.architectures import ARCHITECTURES
from fashiongen.generator.kernel import MIN_PHOTOS, RARE_FROM_PAIR, SPREAD, ResidualKernel
from fashiongen.generator.prior import PRIOR_FILE, LatentPrior
from fashiongen.imaging import IMAGE_SHAPE
from fashiongen.model_folder import (
    CARD_FILE,
    GENERATOR,
    SCHEMA_FILE,
    ModelFolder,
    atomic_folder,
    card_json,
    folder_argument,
    shapes,
)
from fashiongen.paths import DEFAULT_DATA_DIR
from fashiongen.schema import ANY_COLOUR, COLOUR, LabelSchema  # noqa: F401  (ANY_COLOUR: for users of Generator)

# beside model_folder.SCHEMA_FILE and CARD_FILE
ENCODER_FILE, DECODER_FILE, CONFIG_FILE = "encoder.keras", "decoder.keras", "generator.json"


class Generator:
    """A trained CVAE with its label schema: reconstruct uint8 images, generate from labels and a seed."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, schema: LabelSchema, arch: str,
                 card: dict | None = None, prior: LatentPrior | None = None) -> None:
        self.encoder, self.decoder, self.schema, self.arch = encoder, decoder, schema, arch
        self.latent_dim = decoder.inputs[0].shape[-1]
        self.card = card or {}
        self.prior = prior  # None: codes come from N(0, I), as in the paper

    @classmethod
    def load(cls, folder: str | os.PathLike = GENERATOR.shipped, with_prior: bool = True) -> "Generator":
        """The generator in `folder`; with_prior=False skips its latent prior (to refit a broken one).

        Every file is checked, and the latent prior last: a file that is missing, unreadable, of the
        wrong shape or not fitting the others raises `GeneratorError` naming it and the command that
        rebuilds it, the prior refit only when everything else is sound (the refit needs it)."""
        folder = GENERATOR.open(folder)
        folder.require(ENCODER_FILE, DECODER_FILE, CONFIG_FILE, SCHEMA_FILE)
        config = folder.json_object(CONFIG_FILE, {"arch": str, "latent_dim": int})
        arch, latent_dim = config["arch"], config["latent_dim"]
        if arch not in ARCHITECTURES:
            raise folder.error(CONFIG_FILE, f"names the architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
        if latent_dim < 1:
            raise folder.error(CONFIG_FILE, f"has latent_dim {latent_dim}, not a positive size")
        schema, card = folder.schema(), folder.card()
        encoder, decoder = folder.keras_model(ENCODER_FILE), folder.keras_model(DECODER_FILE)
        _check_widths(folder, arch, latent_dim, schema, encoder, decoder)
        prior = _load_prior(folder, arch, latent_dim, schema) if with_prior else None
        return cls(encoder, decoder, schema, arch, card, prior)

    def save(self, folder: str | os.PathLike, card: dict | None = None) -> None:
        """Write everything into a staging folder, then swap it in: never half a model."""
        with atomic_folder(folder) as staging:
            self.encoder.save(staging / ENCODER_FILE)
            self.decoder.save(staging / DECODER_FILE)
            (staging / CONFIG_FILE).write_text(json.dumps({"arch": self.arch, "latent_dim": self.latent_dim}) + "\n")
            self.schema.save(staging / SCHEMA_FILE)
            (staging / CARD_FILE).write_text(card_json(card if card is not None else self.card))
            if self.prior is not None:
                self.prior.save(staging / PRIOR_FILE)

    @property
    def colours(self) -> tuple[str, ...]:
        """The colours generate() takes (its schema's baseColour head); () without colour control."""
        return self.schema.heads.get(COLOUR, ())

    def condition(self, sub_category: str, gender: str, colour: str | None = None) -> np.ndarray:
        """The one-hot condition for a label pair (and colour; None leaves the colour part zero);
        unknown names raise listing the valid ones."""
        try:
            self.schema.check(sub_category, gender)
        except ValueError as error:
            raise GeneratorError(str(error)) from None
        row = self.schema.encode(sub_category, gender)
        if colour is not None:
            if not self.colours:
                raise GeneratorError(f"this generator ({self.arch}) has no colour control; leave the colour out")
            if colour not in self.colours:
                raise GeneratorError(f"Unknown colour {colour!r}; valid: {', '.join(self.colours)}.")
            row[self.schema.slices[COLOUR].start + self.colours.index(colour)] = 1.0
        return row

    def conditions(self, sub_category: str, gender: str, seed: int, n: int = 1,
                   colour: str | None = None) -> np.ndarray:
        """The n condition rows generate() decodes. With colour control and no colour asked for
        ("any"), each row's colour is drawn by the seed from the colours seen with the pair in
        training (LatentPrior.colour_weights; every colour alike without a prior)."""
        _check_count(n)
        row = self.condition(sub_category, gender, colour)
        rows = np.repeat(row[None], n, axis=0)
        if colour is None and self.colours:
            weights = self.prior.colour_weights(row) if self.prior is not None else None
            # a stream of its own: the codes stay those of the same seed without colour control
            drawn = _rng(seed, stream=1).choice(len(self.colours), size=n, p=weights)
            rows[np.arange(n), self.schema.slices[COLOUR].start + drawn] = 1.0
        return rows

    def codes(self, seed: int, n: int) -> np.ndarray:
        """n latent codes drawn from N(0, I) by NumPy's PCG64: the same for the same seed on every
        call, run and machine. Any integer works (negative ones too)."""
        _check_count(n)
        return _rng(seed).standard_normal((n, self.latent_dim)).astype(np.float32)

    def latents(self, conditions: np.ndarray, seed: int) -> np.ndarray:
        """The codes generate() decodes for these condition rows and seed: the seed's N(0, I) draws,
        moved into each pair's part of the code space when the generator has a latent prior (and,
        with its kernel, each row's training residual chosen by the seed too)."""
        conditions = np.asarray(conditions, np.float32).reshape(-1, self.schema.size)
        noise = self.codes(seed, len(conditions))
        if self.prior is None:
            return noise
        # a stream of its own: without a kernel, the codes stay those the seed drew before kernels
        choice = _rng(seed, stream=2).random(len(conditions)) if self.prior.kernel is not None else None
        return self.prior.sample(conditions, noise, choice)

    def fit_prior(self, images: np.ndarray, conditions: np.ndarray, batch_size: int = 512,
                  by_colour: bool = False, colour_shrinkage: float = LatentPrior.COLOUR_SHRINKAGE) -> LatentPrior:
        """Fit (and keep) the latent prior on training images (uint8) and their one-hot conditions;
        `by_colour`: one Gaussian per (sub-category, gender, colour), for a colour generator whose
        encoder never saw the colour, each centre shrunk towards its pair's by `colour_shrinkage`
        pseudo-images (LatentPrior.fit)."""
        if by_colour and not self.colours:
            raise GeneratorError("a prior keyed by colour needs a generator with colour control")
        codes, _ = self.encode(images, conditions, batch_size)
        self.prior = LatentPrior.fit(codes, conditions, len(self.schema.sub_categories),
                                     key_width=self.schema.size if by_colour else self.schema.paper.size,
                                     pair_width=self.schema.paper.size, colour_shrinkage=colour_shrinkage)
        return self.prior

    def fit_kernel(self, images: np.ndarray, conditions: np.ndarray, spread: float = SPREAD,
                   min_photos: int = MIN_PHOTOS, batch_size: int = 512,
                   rare_from_pair: bool = RARE_FROM_PAIR) -> ResidualKernel:
        """Give the latent prior (and keep) a residual kernel of training images (uint8) and their
        one-hot conditions: each one's code minus its key's mean (ResidualKernel.fit)."""
        if self.prior is None:
            raise GeneratorError(f"this {self.arch} generator has no latent prior; a conv or vaegan generator "
                                 "gets one from fit_generator_prior.py")
        _, keys = self.prior._pairs_of(conditions)
        if not np.any(keys >= 0):
            raise GeneratorError(f"none of the {len(keys):,} training images has labels the latent prior knows; "
                                 "is it the dataset the generator was trained on?")
        codes, _ = self.encode(images, conditions, batch_size)
        self.prior = self.prior.with_kernel(ResidualKernel.fit(codes, keys, spread, min_photos, rare_from_pair))
        return self.prior.kernel

    def encode(self, images: np.ndarray, conditions: np.ndarray,
               batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images and their condition rows -> the encoder's (means, log-variances), each
        (N, latent_dim) float32, `batch_size` images at a time so that memory stays bounded."""
        conditions = np.asarray(conditions, np.float32).reshape(len(images), -1)
        means, log_vars = [], []
        for start in range(0, len(images), batch_size):
            x = to_unit_float(images[start:start + batch_size])
            # a plain call: predict_on_batch under a tf.distribute strategy returns one copy per replica
            mean, log_var = self.encoder(x if self.arch == "paper" else [x, conditions[start:start + batch_size]],
                                         training=False)
            means.append(np.asarray(mean, np.float32))
            log_vars.append(np.asarray(log_var, np.float32))
        if not means:
            return (np.zeros((0, self.latent_dim), np.float32),) * 2
        return np.concatenate(means), np.concatenate(log_vars)

    def decode(self, codes: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Latent codes + conditions -> uint8 images."""
        images = self.decoder.predict_on_batch([np.asarray(codes, np.float32), np.asarray(conditions, np.float32)])
        return to_uint8(np.asarray(images))

    def generate(self, sub_category: str, gender: str, seed: int, n: int = 1, colour: str | None = None) -> np.ndarray:
        """n new images of a sub-category and gender (and colour, with colour control; None: any
        colour seen with the pair): uint8 (n, 80, 60, 3), the same pixels for the same (labels,
        colour, seed, n), and the first k of them those of n = k."""
        conditions = self.conditions(sub_category, gender, seed, n, colour)
        return self.decode(self.latents(conditions, seed), conditions)

    def interpolate(self, start: tuple, end: tuple, steps: int) -> np.ndarray:
        """Images along a straight line from (sub-category, gender, seed[, colour]) `start` to `end`,
        in code and condition space: uint8 (steps, 80, 60, 3), the first and last equal to generate()'s."""
        if steps < 2:
            raise GeneratorError(f"steps must be at least 2, got {steps}")
        weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        first, last = (self.conditions(*ends[:2], ends[2], 1, *ends[3:])[0] for ends in (start, end))
        codes = (1 - weights) * self.latents(first, start[2]) + weights * self.latents(last, end[2])
        conditions = (1 - weights) * first + weights * last
        return self.decode(codes, conditions)

    def reconstruct(self, images: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Encode and decode uint8 images with their conditions (the code's mean, no sampling):
        uint8 (N, 80, 60, 3) for N images; one (80, 60, 3) image gives a batch of one."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        conditions = np.asarray(conditions, np.float32).reshape(len(images), -1)
        return self.decode(self.encode(images, conditions)[0], conditions)

    def conditions_from_scores(self, scores: np.ndarray, schema: LabelSchema | None = None) -> np.ndarray:
        """What the decoder is conditioned on for images a labeler has scored, `scores` in the
        columns of the labeler's `schema` (default: the generator's): per head of the generator,
        the labeler's scores themselves for the paper's model, their one-hot argmax for ours. A head
        the labeler lacks stays zero (unknown); one whose classes differ raises `GeneratorError`."""
        schema = schema or self.schema
        scores = np.atleast_2d(np.asarray(scores, np.float32))
        out = np.zeros((len(scores), self.schema.size), np.float32)
        rows = np.arange(len(scores))
        for column, part in self.schema.slices.items():
            if column not in schema.heads:
                continue
            if schema.heads[column] != self.schema.heads[column]:
                raise GeneratorError(f"the labeler's {column} classes are not the generator's; use the labeler "
                                     "the generator was trained with")
            head = scores[:, schema.slices[column]]
            if self.arch == "paper":
                out[:, part] = head
            else:
                out[rows, part.start + head.argmax(axis=1)] = 1.0
        return out


def _check_widths(folder: ModelFolder, arch: str, latent_dim: int, schema: LabelSchema, encoder: keras.Model,
                  decoder: keras.Model) -> None:
    """The Keras files fit generator.json, labels.json and each other (else the first image would fail)."""
    decoder_inputs, decoder_outputs = shapes(decoder.inputs), shapes(decoder.outputs)
    if len(decoder_inputs) != 2 or any(len(shape) != 1 for shape in decoder_inputs) or decoder_outputs != [IMAGE_SHAPE]:
        raise folder.error(DECODER_FILE, f"maps {decoder_inputs} to {decoder_outputs}, not a code and labels to an "
                                         "80x60x3 image")
    (code_width,), (label_width,) = decoder_inputs
    if label_width != schema.size:
        raise folder.error(SCHEMA_FILE, f"names {schema.size} labels, but {folder.path / DECODER_FILE} takes "
                                        f"{label_width}")
    if code_width != latent_dim:
        raise folder.error(CONFIG_FILE, f"says latent_dim {latent_dim}, but {folder.path / DECODER_FILE} takes codes "
                                        f"of {code_width}")
    # the paper's encoder sees no labels
    inputs = {"paper": [IMAGE_SHAPE], "conv": [IMAGE_SHAPE, (schema.size,)], "vaegan": [IMAGE_SHAPE, (schema.size,)]}
    other = [name for name in ARCHITECTURES if inputs[name] != inputs[arch] and shapes(encoder.inputs) == inputs[name]]
    if other:
        raise folder.error(CONFIG_FILE, f"says arch {arch!r}, but {folder.path / ENCODER_FILE} takes the inputs of "
                                        f"a {other[0]} encoder")
    if shapes(encoder.inputs) != inputs[arch] or shapes(encoder.outputs) != [(latent_dim,), (latent_dim,)]:
        raise folder.error(ENCODER_FILE, f"maps {shapes(encoder.inputs)} to {shapes(encoder.outputs)}, not "
                                         f"{inputs[arch]} to a mean and a log-variance of {latent_dim}")


def _load_prior(folder: ModelFolder, arch: str, latent_dim: int, schema: LabelSchema) -> LatentPrior | None:
    """The folder's latent prior (None without one), checked against the generator's other files."""
    path = folder.path / PRIOR_FILE
    if not path.is_file():
        return None
    # fit_generator_prior.py refuses the paper's generator: it draws from N(0, I) by definition
    # the Gaussians first; a residual kernel (the shipped default has one) is fitted on top of them
    fix = (f"Refit it with: {fit_prior_command(folder.path)} ; then, for a residual kernel: "
           f"{fit_prior_command(folder.path, 'fit_prior_kernel.py')}" if arch != "paper"
           else "Delete it: the paper's generator draws its codes from N(0, I)")
    try:
        prior = LatentPrior.load(path)
    except Exception as error:  # a torn zip, a missing array, a wrong dtype
        raise folder.error(PRIOR_FILE, f"is corrupt ({type(error).__name__})", fix) from error
    problem = prior.misfit(latent_dim, schema)
    if problem:
        raise folder.error(PRIOR_FILE, f"does not fit this generator ({problem})", fix)
    return prior


def fit_prior_command(folder: str | os.PathLike = GENERATOR.shipped, script: str = "fit_generator_prior.py") -> str:
    """The command that refits the latent prior of the generator in `folder` (`script`
    fit_prior_kernel.py: its residual kernel, after the Gaussians)."""
    return (f"python scripts/{script} --data-dir {DEFAULT_DATA_DIR.as_posix()} "
            f"--generator {folder_argument(folder, GENERATOR.shipped)}")


def _rng(seed: int, stream: int = 0) -> np.random.Generator:
    """NumPy's PCG64 for a seed: the same draws on every call, run and machine; any integer works
    (negative ones too). `stream` > 0 gives independent draws for the same seed."""
    entropy = [abs(int(seed)), 1 if int(seed) < 0 else 0] + ([stream] if stream else [])
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _check_count(n: int) -> None:
    if n < 1:
        raise GeneratorError(f"n must be at least 1, got {n}")


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)
