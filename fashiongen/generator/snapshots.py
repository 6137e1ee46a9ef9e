"""Grids of a generator in training, one PNG per epoch: what its numbers cannot show (blur,
lattices, adversarial textures) is looked at, not guessed."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from fashiongen.batches import to_unit_float
from fashiongen.generator.generator import to_uint8
from fashiongen.imaging import image_grid

SNAPSHOT_DIR = "grids"  # inside the run folder


class EpochGrids(keras.callbacks.Callback):
    """After every epoch, `<run dir>/grids/epoch-NNN.png`: one row per label row of `conditions`
    decoded from the same fixed N(0, I) draws (columns), moved by the latent prior a warm-started
    VAEGAN draws its codes from (as generation does) when it has one, then `photos` and their
    reconstructions in alternating rows. Fixed draws make epochs comparable picture by picture."""

    def __init__(self, run_dir: Path, conditions: np.ndarray, photos: np.ndarray, photo_conditions: np.ndarray,
                 columns: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.folder = Path(run_dir) / SNAPSHOT_DIR
        self.conditions = np.asarray(conditions, np.float32)
        self.photos, self.photo_conditions = np.asarray(photos), np.asarray(photo_conditions, np.float32)
        self.columns, self.seed = columns, seed

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        model = self.model
        codes = np.random.default_rng(self.seed).standard_normal((self.columns, model.latent_dim)).astype(np.float32)
        prior = getattr(model, "prior_codes", None)
        drawn = []
        for row in self.conditions:
            rows = np.repeat(row[None], self.columns, axis=0)
            drawn.append(model.decoder([codes if prior is None else np.asarray(prior.sample(rows, codes)), rows],
                                       training=False))
        x = to_unit_float(self.photos)
        mean, _ = model.encode(x, self.photo_conditions)
        rebuilt = model.decoder([np.asarray(mean), self.photo_conditions], training=False)
        pictures = [to_uint8(np.asarray(images)) for images in drawn] + [self.photos, to_uint8(np.asarray(rebuilt))]
        self.folder.mkdir(parents=True, exist_ok=True)
        grid = image_grid(np.concatenate(pictures), columns=self.columns, scale=2)
        grid.save(self.folder / f"epoch-{epoch + 1:03d}.png")
