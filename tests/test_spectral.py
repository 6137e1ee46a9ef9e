"""The spectral excess (fashiongen/generator/spectral.py): fine pattern a reconstruction has and its
photo lacks, and the VAE-GAN term it gives."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import SCHEMA, fixed_batch
from scipy.ndimage import gaussian_filter, uniform_filter

from fashiongen.generator.cvae import build_generator
from fashiongen.generator.quality import power_spectra
from fashiongen.generator.spectral import POWER_FLOOR, SpectralExcess
from fashiongen.generator.vaegan import AdversarialConfig


def product(n: int = 3) -> np.ndarray:
    """n [0, 1] images: a plain dark box on a light ground, a little noise."""
    rng = np.random.default_rng(0)
    images = np.full((n, 80, 60, 3), 0.9, np.float32)
    images[:, 20:60, 15:45] = (0.2, 0.3, 0.5)
    return np.clip(images + rng.normal(0, 0.01, images.shape), 0, 1).astype(np.float32)


def plaid(images: np.ndarray, period: int, amount: float = 0.06, phase: int = 0) -> np.ndarray:
    """`images` with a plaid of `period` pixels painted over the box, its squares moved by `phase` pixels."""
    y, x = np.mgrid[:80, :60] + phase
    squares = ((y // (period // 2) + x // (period // 2)) % 2)[20:60, 15:45, None]
    painted = images.copy()
    painted[:, 20:60, 15:45] += amount * squares
    return painted


def test_a_painted_plaid_is_an_excess_and_a_blur_is_none() -> None:
    photos, term = product(), SpectralExcess()
    assert np.asarray(term.excess(photos, photos)) == pytest.approx(0.0, abs=1e-6)
    blurred = gaussian_filter(photos, (0, 1.5, 1.5, 0))
    assert np.asarray(term.excess(photos, blurred)) == pytest.approx(0.0, abs=1e-3)  # less pattern: no excess
    for period in (4, 8, 16):
        assert np.all(np.asarray(term.excess(photos, plaid(photos, period))) > 0.1)
    # The other way round, the photo has the plaid and the reconstruction misses it: hardly an excess
    # (a few bins where the plaid cancelled the box's own power)
    missed = np.asarray(term.excess(plaid(photos, 8), photos))
    assert np.all(missed < 0.3 * np.asarray(term.excess(photos, plaid(photos, 8))))


def test_a_margin_lets_a_faint_excess_pass_and_counts_a_strong_one() -> None:
    photos = product()
    faint, strong = plaid(photos, 8, amount=0.01), plaid(photos, 8, amount=0.1)
    free, strict = SpectralExcess(margin=np.log(4.0)), SpectralExcess()
    assert np.all(np.asarray(strict.excess(photos, faint)) > 0.01)
    assert np.all(np.asarray(free.excess(photos, faint)) < 0.1 * np.asarray(strict.excess(photos, faint)))
    assert np.all(np.asarray(free.excess(photos, strong)) > 0.1)
    # a strong plaid counts, if less than without the margin
    assert np.all(np.asarray(free.excess(photos, strong)) < np.asarray(strict.excess(photos, strong)))


def test_a_plaid_cannot_hide_by_moving() -> None:
    """Moved against the product, a plaid keeps its power (but where it cuts the box's edges)."""
    photos, term = product(), SpectralExcess()
    here = np.asarray(term.excess(photos, plaid(photos, 8)))
    for phase in (1, 2, 3):
        np.testing.assert_allclose(np.asarray(term.excess(photos, plaid(photos, 8, phase=phase))), here, rtol=0.25)


def test_a_coarse_pattern_is_outside_the_band() -> None:
    """Periods over 16 pixels are shapes, which the reconstruction loss judges, not pattern."""
    photos, term = product(), SpectralExcess()
    y, x = np.mgrid[:80, :60]
    shaded = photos + 0.1 * (np.sin(2 * np.pi * y / 40) * np.sin(2 * np.pi * x / 40))[None, :, :, None]
    in_band = np.asarray(term.excess(photos, shaded))
    assert np.all(in_band < 0.001)
    assert np.all(np.asarray(SpectralExcess(min_frequency=0.0).excess(photos, shaded)) > 5 * in_band)


def test_the_finest_texture_can_be_left_free() -> None:
    """A 3 px texture counts up to the Nyquist frequency, not in the pattern ratio's band alone;
    an 8 px plaid counts there too."""
    photos = product()
    y, x = np.mgrid[:80, :60]
    texture = photos + 0.05 * (np.sin(2 * np.pi * y / 3) * np.sin(2 * np.pi * x / 3))[None, :, :, None]
    every, pattern = SpectralExcess(), SpectralExcess(max_frequency=0.5)
    assert np.all(np.asarray(every.excess(photos, texture)) > 10 * np.asarray(pattern.excess(photos, texture)))
    assert np.all(np.asarray(pattern.excess(photos, plaid(photos, 8))) > 0.1)


def test_its_spectrum_is_the_evaluations() -> None:
    """The loss reads the spectrum quality.pattern_ratio does (power_spectra, a 3x3 mean of bins),
    compared as the logs both take, so that faint bins count as much as strong ones."""
    images = (product(2) * 255).round().astype(np.uint8)
    expected = uniform_filter(next(power_spectra(images)), (1, 3, 3), mode="wrap")
    ours = np.asarray(SpectralExcess().log_power(images / 255.0), np.float64)
    np.testing.assert_allclose(ours, np.log(expected + POWER_FLOOR), atol=1e-3)


def test_the_band_holds_periods_up_to_16_pixels() -> None:
    """Waves of 6 and 12 px are pattern; of 24 and 40 px, shapes (the window's leakage and the 3x3
    mean spread a wave over a few bins, so compare, not test for 0)."""
    photos, term = product(), SpectralExcess()
    y = np.mgrid[:80, :60][0]
    excess = {period: np.asarray(term.excess(photos, photos + 0.05 * np.sin(2 * np.pi * y / period)[None, :, :, None]))
              for period in (6, 12, 24, 40)}
    assert np.all(np.minimum(excess[6], excess[12]) > 5 * np.maximum(excess[24], excess[40]))


def test_the_term_trains_the_decoder_and_is_tracked() -> None:
    """With its weight the term is computed and moves the decoder; at 0 it is not computed."""
    images, labels = fixed_batch(8)
    decoders, histories = {}, {}
    for weight in (0.0, 100.0):
        keras.utils.set_random_seed(0)
        model = build_generator("vaegan", SCHEMA.size, latent_dim=16,
                                adversarial=AdversarialConfig(spectral_excess_weight=weight))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(1e-3))
        histories[weight] = model.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0).history
        decoders[weight] = model.decoder.get_weights()
    assert histories[0.0]["spectral_excess"][0] == 0.0 < histories[100.0]["spectral_excess"][0]
    assert any(not np.allclose(a, b) for a, b in zip(decoders[0.0], decoders[100.0]))


def test_a_band_without_bins_or_an_uncentred_neighbourhood_is_refused() -> None:
    with pytest.raises(ValueError, match="holds no bin"):
        SpectralExcess(min_frequency=0.5, max_frequency=0.25)
    with pytest.raises(ValueError, match="must be odd"):
        SpectralExcess(neighbourhood=4)
