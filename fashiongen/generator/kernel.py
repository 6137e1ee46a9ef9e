"""The residual kernel: the training photos' own codes around their key's mean, which a latent prior
draws instead of its Gaussian's spread (a kernel density estimate centred on the prior's, possibly
judge-refined, centres). Measured against the Gaussian in
docs/experiments/2026-12-07-mixture-prior.md:
closer to real photos, more varied and labelled as asked more often, with every photo's code kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPREAD = 0.3  # h: 0.2-0.45 measured alike (docs/experiments/2026-12-07-mixture-prior.md)
# a key with fewer photos draws from its Gaussian instead: one photo's residual is 0, and a handful
# would give every seed nearly the same image
MIN_PHOTOS = 8
# ... or, rather than their Gaussian, a residual of any photo of their (sub-category, gender) pair: closer
# to real photos but less of them covered, measured on the half of a colour prior's keys that are that
# rare (docs/experiments/2026-12-07-rare-keys.md), so off
RARE_FROM_PAIR = False
LEVELS = 127  # residuals are stored as int8 in units of a per-dimension step: 1/127 of its largest


@dataclass(frozen=True)
class ResidualKernel:
    residuals: np.ndarray  # (photos, latent) int8, in units of `step`
    step: np.ndarray  # (latent,) float32
    keys: np.ndarray  # (photos,) int64: the prior's key of each photo, ascending
    spread: float  # the share of the key's Gaussian spread drawn around each residual
    min_photos: int = MIN_PHOTOS  # keys with fewer draw from their Gaussian (or their pair's residuals)
    # keys with fewer than min_photos draw their pair's photos' residuals (fit's default: RARE_FROM_PAIR;
    # from_arrays reads kernels saved before there was the choice as False, so their pixels stay)
    rare_from_pair: bool = False

    @classmethod
    def fit(cls, codes: np.ndarray, keys: np.ndarray, spread: float, min_photos: int = MIN_PHOTOS,
            rare_from_pair: bool = RARE_FROM_PAIR) -> "ResidualKernel":
        """From the encoder's mean codes of training photos and each photo's key in the prior (rows
        of key -1, a key the prior does not know, are left out): each code minus its key's mean."""
        codes, keys = np.asarray(codes, np.float64), np.asarray(keys, np.int64).reshape(-1)
        if len(codes) != len(keys):
            raise ValueError(f"{len(codes)} codes but {len(keys)} keys")
        if not (np.isfinite(spread) and spread >= 0):
            raise ValueError(f"the kernel's spread must be a number of at least 0, got {spread}")
        if min_photos < 1:
            raise ValueError(f"min_photos must be at least 1, got {min_photos}")
        known = keys >= 0
        codes, keys = codes[known], keys[known]
        order = np.argsort(keys, kind="stable")
        codes, keys = codes[order], keys[order]
        sums = np.zeros((int(keys.max(initial=-1)) + 1, codes.shape[1]))
        np.add.at(sums, keys, codes)
        counts = np.bincount(keys, minlength=len(sums))
        residuals = codes - sums[keys] / counts[keys, None]
        largest = np.abs(residuals).max(axis=0, initial=0.0)
        step = np.where(largest > 0, largest / LEVELS, 1.0).astype(np.float32)
        quantised = np.clip(np.round(residuals / step), -LEVELS, LEVELS).astype(np.int8)
        return cls(quantised, step, keys, float(spread), int(min_photos), bool(rare_from_pair))

    def draw(self, keys: np.ndarray, choice: np.ndarray, pair_of_key: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """For each row's key and uniform `choice` in [0, 1): one of the key's residuals
        ((rows, latent) float32) and whether one was drawn (rows without stay zero, for the
        Gaussian). A key with fewer than `min_photos` draws none, or, with `rare_from_pair` and
        `pair_of_key` (the prior's pair index of each key), one of its pair's photos' residuals."""
        keys = np.asarray(keys, np.int64).reshape(-1)
        choice = np.clip(np.asarray(choice, np.float64).reshape(-1), 0.0, 1.0)
        if len(choice) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(choice)} choices")
        picked, has = _pick(self.keys, keys, choice, self.min_photos)
        rare = (keys >= 0) & ~has
        if self.rare_from_pair and pair_of_key is not None and rare.any():
            pair_of_key = np.asarray(pair_of_key, np.int64)
            pair_of_photo = pair_of_key[self.keys]
            by_pair = np.argsort(pair_of_photo, kind="stable")
            in_pair, from_pair = _pick(pair_of_photo[by_pair], pair_of_key[keys[rare]], choice[rare], self.min_photos)
            rows = np.flatnonzero(rare)[from_pair]
            picked[rows], has[rows] = by_pair[in_pair[from_pair]], True
        out = np.zeros((len(keys), self.residuals.shape[1]), np.float32)
        out[has] = self.residuals[picked[has]].astype(np.float32) * self.step
        return out, has

    def arrays(self) -> dict[str, np.ndarray]:
        """What LatentPrior.save stores, by name in its .npz."""
        return {"kernel_residuals": self.residuals, "kernel_step": self.step, "kernel_keys": self.keys,
                "kernel_spread": np.float64(self.spread), "kernel_min_photos": np.int64(self.min_photos),
                "kernel_rare_from_pair": np.bool_(self.rare_from_pair)}

    @classmethod
    def from_arrays(cls, saved) -> "ResidualKernel | None":
        """The kernel in a loaded .npz, or None for a prior saved without one."""
        if "kernel_residuals" not in saved.files:
            return None
        min_photos = int(saved["kernel_min_photos"]) if "kernel_min_photos" in saved.files else 1
        rare_from_pair = "kernel_rare_from_pair" in saved.files and bool(saved["kernel_rare_from_pair"])
        return cls(np.asarray(saved["kernel_residuals"]), np.asarray(saved["kernel_step"]),
                   np.asarray(saved["kernel_keys"]), float(saved["kernel_spread"]), min_photos, rare_from_pair)

    def misfit(self, latent_dim: int, n_keys: int) -> str | None:
        """Why this kernel cannot serve a prior of `n_keys` keys and codes of `latent_dim`, or None."""
        if self.residuals.dtype != np.int8 or self.residuals.shape[1:] != (latent_dim,):
            return f"its kernel residuals are {self.residuals.dtype} {self.residuals.shape}, not int8 (n, {latent_dim})"
        if self.step.shape != (latent_dim,) or self.keys.shape != (len(self.residuals),):
            return f"its kernel steps {self.step.shape} or keys {self.keys.shape} do not match its residuals"
        if not (np.all(np.isfinite(self.step)) and np.all(self.step > 0) and np.isfinite(self.spread)
                and self.spread >= 0 and self.min_photos >= 1):
            return "its kernel steps, spread or min_photos are not positive numbers"
        if len(self.keys) and (self.keys.min() < 0 or self.keys.max() >= n_keys or np.any(np.diff(self.keys) < 0)):
            return f"its kernel keys are not ascending keys below {n_keys}"
        return None

    def describe(self) -> dict:
        """For the model card."""
        rare = "a residual of any photo of their pair" if self.rare_from_pair else "from their Gaussian"
        return {"photos": len(self.keys), "spread": self.spread, "min_photos": self.min_photos,
                "rare_from_pair": self.rare_from_pair,
                "draws": "a training photo's code minus its key's mean, added to the key's centre, plus "
                         f"{self.spread:g} of the key's Gaussian spread; keys with fewer than "
                         f"{self.min_photos} photos draw {rare}"}


def _pick(sorted_groups: np.ndarray, groups: np.ndarray, choice: np.ndarray, min_photos: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """For each of `groups` (with its `choice`): the index into `sorted_groups` (ascending) of the
    chosen one of its members, and whether it has at least `min_photos` of them."""
    starts = np.searchsorted(sorted_groups, groups, side="left")
    counts = np.searchsorted(sorted_groups, groups, side="right") - starts
    has = (groups >= 0) & (counts >= max(min_photos, 1))
    return starts + np.minimum((choice * counts).astype(np.int64), np.maximum(counts - 1, 0)), has
