"""The latent prior: one Gaussian per label pair, where the encoder puts that pair's images; generation draws its codes from it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from fashiongen.errors import GeneratorError
from fashiongen.files import atomic_write_bytes
from fashiongen.generator.kernel import ResidualKernel
from fashiongen.schema import LabelSchema

PRIOR_FILE = "prior.npz"


class LatentPrior:
    """Where the encoder puts each label pair's images: one Gaussian per (sub-category, gender)
    pair, centred on the mean code of that pair's training images. Its covariance is the pair's
    own, shrunk towards the within-pair covariance pooled over all pairs by SHRINKAGE pseudo-images,
    so a pair with one or two photos still gets a full-rank spread.

    Why: the KL term only pulls the codes of all images together towards N(0, I); the codes of
    one pair fill a small part of it, and the decoder learned from those codes as much as from the
    labels. A code drawn from N(0, I) may sit where shirts live, and the decoder then draws a
    shirt whatever the labels say. Drawing from the pair's own part of the code space fixes that
    without retraining ("ex-post density estimation", Ghosh et al. 2020, per label pair).

    A generator conditioned on colour too (its schema has a baseColour head after the paper's two)
    keeps one Gaussian per (sub-category, gender) pair when its encoder sees the colour, so the codes
    need not hold it. Each pair also counts its training photos' colours (`colour_counts`), from
    which "any colour" is drawn. A generator whose encoder never saw the colour (a vaegan started
    from a conv generator's frozen encoder) has codes that hold it: its prior is keyed by colour
    too, one Gaussian per (sub-category, gender, colour), so that the drawn code and the asked colour
    agree; `pair_width` then names the pair's columns within the key, and the keys' counts give
    "any colour".
    """

    SHRINKAGE = 5.0  # pseudo-images; other values measured about the same (docs/generator.md)
    # keyed by colour: each key's centre is shrunk towards its pair's by this many pseudo-images
    # (most of the thousand keys hold a handful of photos, whose mean code is mostly noise)
    COLOUR_SHRINKAGE = 0.0

    def __init__(self, conditions: np.ndarray, means: np.ndarray, counts: np.ndarray, scales: np.ndarray,
                 pooled_scale: np.ndarray, n_sub_categories: int, shrinkage: float = SHRINKAGE,
                 colour_counts: np.ndarray | None = None, pair_width: int | None = None,
                 scale_of_key: np.ndarray | None = None, kernel: ResidualKernel | None = None) -> None:
        # (keys, 25) one-hot rows of the paper's heads; keyed by colour, (keys, 25 + colours)
        self.conditions = np.asarray(conditions, np.float32)
        self.means = np.asarray(means, np.float32)  # (pairs, latent)
        self.counts = np.asarray(counts, np.int64)  # training images per pair
        # lower-triangular factors, covariance = scale @ scale.T: (pairs, latent, latent) and, for
        # pairs never seen in training, the pooled one (latent, latent)
        self.scales = np.asarray(scales, np.float32)
        self.pooled_scale = np.asarray(pooled_scale, np.float32)
        self.n_sub_categories = int(n_sub_categories)
        self.shrinkage = float(shrinkage)
        # (pairs, colours): each pair's training photos per colour; (pairs, 0) without a colour head
        self.colour_counts = (np.zeros((len(self.conditions), 0), np.int64) if colour_counts is None
                              else np.asarray(colour_counts, np.int64))
        self.pair_width = self.key_width if pair_width is None else int(pair_width)
        # which of `scales` each key draws with: its own (None), or, keyed by colour, its pair's
        self.scale_of_key = (np.arange(len(self.conditions)) if scale_of_key is None
                             else np.asarray(scale_of_key, np.int64))
        # the training photos' own spread around each key's centre, drawn instead of the Gaussian's
        # when sample() gets a choice (with_kernel)
        self.kernel = kernel
        # each key's (sub-category, gender) pair, for a kernel's rare keys: from the conditions, since
        # scale_of_key stops naming the pair once refined() gives every key its own spread
        self.pair_of_key = (np.unique(self.conditions[:, : self.pair_width], axis=0, return_inverse=True)[1].reshape(-1)
                            if len(self.conditions) else np.zeros(0, np.int64))

    @property
    def key_width(self) -> int:
        """The condition columns that name a Gaussian: the paper's sub-category and gender (and the
        colour, for a prior keyed by colour)."""
        return self.conditions.shape[1] if self.conditions.ndim == 2 else 0

    @property
    def key_scales(self) -> np.ndarray:
        """Each key's lower-triangular factor, (keys, latent, latent): keyed by colour, its pair's."""
        return self.scales[self.scale_of_key]

    @property
    def keyed_by_colour(self) -> bool:
        return self.key_width > self.pair_width

    @classmethod
    def fit(cls, codes: np.ndarray, conditions: np.ndarray, n_sub_categories: int,
            shrinkage: float = SHRINKAGE, key_width: int | None = None, pair_width: int | None = None,
            colour_shrinkage: float = COLOUR_SHRINKAGE) -> "LatentPrior":
        """Fit on the encoder's mean codes of training images and their one-hot conditions; rows
        whose sub-category is outside the schema (an all-zero sub-category part) are left out.
        `key_width`: the columns naming a Gaussian (the paper's two heads); the columns after them
        are a colour one-hot, counted per key. Default: every column names it. `pair_width`: within
        the key, the paper's two heads (default: the whole key); each key's centre is then its
        photos' mean code shrunk towards their pair's by `colour_shrinkage` pseudo-images, and the
        spread stays that around each key's own photos' mean."""
        codes, conditions = np.asarray(codes, np.float64), np.asarray(conditions, np.float32)
        known = conditions[:, :n_sub_categories].sum(axis=1) > 0
        codes, conditions = codes[known], conditions[known]
        if len(codes) < 2:
            raise GeneratorError(f"fitting the latent prior needs at least 2 labelled images, got {len(codes)}")
        key_width = conditions.shape[1] if key_width is None else key_width
        pairs, pair_of_row, counts = np.unique(conditions[:, :key_width], axis=0, return_inverse=True,
                                               return_counts=True)
        pair_of_row = pair_of_row.reshape(-1)
        colour_counts = np.zeros((len(pairs), conditions.shape[1] - key_width), np.int64)
        np.add.at(colour_counts, pair_of_row, conditions[:, key_width:].astype(np.int64))
        means = np.zeros((len(pairs), codes.shape[1]))
        np.add.at(means, pair_of_row, codes)
        means /= counts[:, None]
        residuals = codes - means[pair_of_row]
        pooled = residuals.T @ residuals / max(len(codes) - len(pairs), 1)
        ridge = 1e-6 * np.eye(len(pooled))  # keeps the factorisation defined when a direction never varies
        # keyed by colour, one spread per pair (around each colour's own centre): a factor per key
        # would be a 64 KB matrix for each of about a thousand keys, most with a handful of photos
        pair_width = key_width if pair_width is None else pair_width
        spreads, scale_of_key = np.unique(pairs[:, :pair_width], axis=0, return_inverse=True)
        scale_of_key = scale_of_key.reshape(-1)
        scale_of_row = scale_of_key[pair_of_row]
        scales = []
        for spread in range(len(spreads)):
            own = residuals[scale_of_row == spread]
            scales.append(np.linalg.cholesky((own.T @ own + shrinkage * pooled) / (len(own) + shrinkage) + ridge))
        if pair_width < key_width and colour_shrinkage > 0:
            pair_means = np.zeros((len(spreads), codes.shape[1]))
            np.add.at(pair_means, scale_of_row, codes)
            pair_means /= np.bincount(scale_of_row, minlength=len(spreads))[:, None]
            means = ((counts[:, None] * means + colour_shrinkage * pair_means[scale_of_key])
                     / (counts + colour_shrinkage)[:, None])
        return cls(pairs, means, counts, np.stack(scales), np.linalg.cholesky(pooled + ridge), n_sub_categories,
                   shrinkage, colour_counts, pair_width, scale_of_key if pair_width < key_width else None)

    def _pairs_of(self, conditions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the rows' pair columns, index of each row's pair or -1 for a pair never seen in training);
        `conditions` may carry colour columns after the pair's."""
        conditions = np.atleast_2d(np.asarray(conditions, np.float32))[:, : self.key_width]
        matches = (conditions[:, None, :] == self.conditions[None]).all(axis=2)
        return conditions, np.where(matches.any(axis=1), matches.argmax(axis=1), -1)

    def centres(self, conditions: np.ndarray) -> np.ndarray:
        """The mean code for each condition row: its key's; for a key never seen in training, the
        count-weighted mean over the keys of its pair (keyed by colour), else of its sub-category
        (N(0, I)'s centre without one)."""
        return self._centres(*self._pairs_of(conditions))

    def _centres(self, conditions: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        out = np.zeros((len(conditions), self.means.shape[1]), np.float32)
        pair_sub = self.conditions[:, : self.n_sub_categories].argmax(axis=1)
        for row, (condition, pair) in enumerate(zip(conditions, pairs)):
            if pair >= 0:
                out[row] = self.means[pair]
                continue
            siblings = np.flatnonzero((self.conditions[:, : self.pair_width] == condition[: self.pair_width])
                                      .all(axis=1)) if self.keyed_by_colour else []
            if not len(siblings) and condition[: self.n_sub_categories].max() > 0:
                siblings = np.flatnonzero(pair_sub == condition[: self.n_sub_categories].argmax())
            if len(siblings):
                out[row] = np.average(self.means[siblings], axis=0, weights=self.counts[siblings])
        return out

    def sample(self, conditions: np.ndarray, noise: np.ndarray, choice: np.ndarray | None = None) -> np.ndarray:
        """Codes for the condition rows from standard-normal `noise` of the same number of rows. With a
        kernel and a uniform `choice` in [0, 1) per row, each row of a key with training photos is
        instead its centre plus one of their residuals (picked by `choice`; for a key under the
        kernel's min_photos, none, or with rare_from_pair one of its pair's) plus the kernel's share
        of the Gaussian's spread; without either, every row is the Gaussian's."""
        conditions, pairs = self._pairs_of(conditions)
        noise = np.asarray(noise, np.float32)
        scales = np.where((pairs >= 0)[:, None, None], self.scales[self.scale_of_key[np.maximum(pairs, 0)]],
                          self.pooled_scale)
        spread = np.einsum("nij,nj->ni", scales, noise)
        centres = self._centres(conditions, pairs)
        if self.kernel is None or choice is None:
            return (centres + spread).astype(np.float32)
        residuals, has = self.kernel.draw(pairs, choice, self.pair_of_key)
        kernel_codes = centres + residuals + self.kernel.spread * spread
        return np.where(has[:, None], kernel_codes, centres + spread).astype(np.float32)

    def with_kernel(self, kernel: ResidualKernel | None) -> "LatentPrior":
        """This prior's Gaussians with `kernel` (None: without one)."""
        return self._with(kernel=kernel)

    def _with(self, **changes) -> "LatentPrior":
        """A copy of this prior with the named constructor arguments replaced."""
        arguments = {"conditions": self.conditions, "means": self.means, "counts": self.counts, "scales": self.scales,
                     "pooled_scale": self.pooled_scale, "n_sub_categories": self.n_sub_categories,
                     "shrinkage": self.shrinkage, "colour_counts": self.colour_counts, "pair_width": self.pair_width,
                     "scale_of_key": self.scale_of_key, "kernel": self.kernel}
        return LatentPrior(**(arguments | changes))

    def refined(self, shift: np.ndarray, log_stretch: np.ndarray) -> "LatentPrior":
        """This prior with each pair's Gaussian moved and stretched in its own whitened coordinates:
        codes = mean + scale @ (shift + exp(log_stretch) * noise). The KL divergence from the
        refined Gaussian to this one is then 0.5 * sum(exp(2 log_stretch) + shift^2 - 1 - 2 log_stretch)
        per pair (see refine.py). Pairs never seen in training keep their fallback."""
        shift, log_stretch = np.asarray(shift, np.float64), np.asarray(log_stretch, np.float64)
        if shift.shape != self.means.shape or log_stretch.shape != self.means.shape:
            raise ValueError(f"shift and log_stretch must be {self.means.shape}, got {shift.shape} and "
                             f"{log_stretch.shape}")
        means = self.means + np.einsum("pij,pj->pi", self.key_scales, shift)
        if not log_stretch.any():  # unchanged spreads: the keys keep sharing their pair's factor (one per
            # key of a prior keyed by colour would be 64 KB for each of about a thousand keys)
            scales, scale_of_key = self.scales, self.scale_of_key
        else:  # each key's own; scaling columns keeps them lower-triangular
            scales, scale_of_key = self.key_scales * np.exp(log_stretch)[:, None, :], None
        # the kernel's residuals move with their key's centre (they are stored relative to it)
        return self._with(means=means, scales=scales, scale_of_key=scale_of_key)

    def colour_weights(self, condition: np.ndarray) -> np.ndarray | None:
        """How often each colour was seen with this condition's pair in training, as shares (the
        pair's sub-category's colours for a pair never seen or seen only in colours outside the
        head; every colour alike without either);
        None when the prior counts no colours."""
        if self.keyed_by_colour:  # each key's photos, by the colour in its key
            colour_counts, pair_columns = self.conditions[:, self.pair_width:] * self.counts[:, None], self.pair_width
        elif self.colour_counts.shape[1]:
            colour_counts, pair_columns = self.colour_counts, self.key_width
        else:
            return None
        condition = np.asarray(condition, np.float32).reshape(-1)[:pair_columns]
        sub_category = condition[: self.n_sub_categories]
        same_pair = (self.conditions[:, :pair_columns] == condition).all(axis=1)
        counts = colour_counts[same_pair].sum(axis=0).astype(np.float64)
        if counts.sum() <= 0 and sub_category.max() > 0:  # never seen, or only in colours outside the head
            siblings = self.conditions[:, : self.n_sub_categories].argmax(axis=1) == sub_category.argmax()
            counts = colour_counts[siblings].sum(axis=0).astype(np.float64)
        if counts.sum() <= 0:
            counts = np.ones(colour_counts.shape[1])
        return counts / counts.sum()

    def with_colours(self, conditions: np.ndarray) -> "LatentPrior":
        """This prior's Gaussians with each pair's colours counted anew on `conditions` (one-hot rows,
        a colour one-hot after the pair's columns, as many colours as wanted): for a generator
        conditioned on colour whose encoder, and so codes, are those this prior was fitted on."""
        conditions = np.asarray(conditions, np.float32)
        _, pairs = self._pairs_of(conditions)
        seen = pairs >= 0
        colour_counts = np.zeros((len(self.conditions), conditions.shape[1] - self.key_width), np.int64)
        np.add.at(colour_counts, pairs[seen], conditions[seen, self.key_width:].astype(np.int64))
        return self._with(colour_counts=colour_counts)

    def describe(self) -> dict:
        """For the model card."""
        described = {"images": int(self.counts.sum()), "pairs": int(len(self.counts)),
                     "keyed_by_colour": self.keyed_by_colour,
                     "covariance": f"each pair's own, shrunk towards the pooled within-pair covariance by "
                                   f"{self.shrinkage:g} pseudo-images", "file": PRIOR_FILE}
        return described if self.kernel is None else described | {"kernel": self.kernel.describe()}

    def save(self, path: Path) -> None:
        """Atomically: readers see the old prior or the new one, never half of one. Compressed:
        the scales are lower-triangular, half zeros, and the file ships with the app."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, conditions=self.conditions, means=self.means, counts=self.counts, scales=self.scales,
                 pooled_scale=self.pooled_scale, n_sub_categories=np.int64(self.n_sub_categories),
                 shrinkage=np.float64(self.shrinkage), colour_counts=self.colour_counts,
                 pair_width=np.int64(self.pair_width), scale_of_key=self.scale_of_key,
                 **({} if self.kernel is None else self.kernel.arrays()))
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "LatentPrior":
        """The prior saved in `path`, as saved: `misfit` says whether it serves a given generator."""
        with np.load(path, allow_pickle=False) as saved:
            colours = saved["colour_counts"] if "colour_counts" in saved.files else None  # older priors: none
            pair_width = int(saved["pair_width"]) if "pair_width" in saved.files else None  # older: the key
            scale_of_key = saved["scale_of_key"] if "scale_of_key" in saved.files else None  # older: their own
            return cls(saved["conditions"], saved["means"], saved["counts"], saved["scales"], saved["pooled_scale"],
                       int(saved["n_sub_categories"]), float(saved["shrinkage"]), colours, pair_width, scale_of_key,
                       ResidualKernel.from_arrays(saved))  # older priors: none

    def misfit(self, latent_dim: int, schema: LabelSchema) -> str | None:
        """Why this prior cannot serve a generator with codes of `latent_dim` and labels of `schema`
        (its arrays disagree with them or with each other), or None when it can."""
        pairs = self.conditions.shape[0] if self.conditions.ndim else 0
        keyed = self.keyed_by_colour  # the colour is in the key, not counted beside it
        spreads = self.scales.shape[0] if self.scales.ndim else 0
        expected = {"conditions": (pairs, schema.size if keyed else schema.paper.size), "means": (pairs, latent_dim),
                    "counts": (pairs,), "scales": (spreads, latent_dim, latent_dim),
                    "pooled_scale": (latent_dim, latent_dim),
                    "colour_counts": (pairs, 0 if keyed else schema.size - schema.paper.size),
                    "scale_of_key": (pairs,)}
        if len(self.scale_of_key) and not (0 <= self.scale_of_key.min() and self.scale_of_key.max() < spreads):
            return f"its scale_of_key points outside its {spreads} scales"
        if self.pair_width != schema.paper.size:
            return f"its keys name a pair in {self.pair_width} columns, not {schema.paper.size}"
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                return (f"its {name} are {getattr(self, name).shape}, not {shape} for codes of {latent_dim} and "
                        f"{schema.size} labels ({schema.paper.size} naming a pair)")
        if self.n_sub_categories != len(schema.sub_categories):
            return (f"it splits the labels after {self.n_sub_categories} sub-categories, not "
                    f"{len(schema.sub_categories)}")
        return None if self.kernel is None else self.kernel.misfit(latent_dim, pairs)
