"""A spectral excess: how much more fine pattern a reconstruction has than its own photo.

A plaid or bands a decoder paints (docs/experiments/2026-12-06-plaid-source.md) add power at
periods of 4-16 pixels where the photo has little; real detail drawn where the photo has it does
not. So, per image pair: each image's spectral power as quality.power_spectra takes it
(Hann-windowed, each channel's mean removed, channels summed), averaged over 3x3 neighbouring
bins, and the mean over the band's bins of max(0, log(reconstruction's power) - log(photo's
power) - margin). The band is every bin of periods up to 16 pixels by default, pattern_ratio's
periods of 4-16 and texture_ratio's under 4; `max_frequency` 0.5 keeps pattern_ratio's alone.
The spectrum does not move with the image, so a pattern cannot hide by shifting, as the lattice
did from a penalty on its own bins (docs/experiments/2026-12-02-conv-decoder-gan.md).

But a blurred reconstruction scores 0: against the perceptual term's plaid, at every weight,
margin and band tried, the term took the plaid and the perceptual term's gain together
(docs/experiments/2026-12-07-spectral-excess.md). It is off by default.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from fashiongen.imaging import IMAGE_SHAPE

# pattern_ratio's band (quality.py), in units of the Nyquist frequency: periods of 4 to 16 pixels
PATTERN_BAND = (0.125, 0.5)
# added to each bin's power before the log: about the power of uint8 rounding noise in one bin, so
# that differences a saved image could not hold do not count (and the log's gradient stays bounded)
POWER_FLOOR = 1e-3


def frequencies(shape: tuple[int, int]) -> np.ndarray:
    """Each FFT bin's frequency, the larger of its y and x, in units of the Nyquist frequency (1 there)."""
    fy = np.abs(np.fft.fftfreq(shape[0]))[:, None] * 2
    fx = np.abs(np.fft.fftfreq(shape[1]))[None, :] * 2
    return np.maximum(fy, fx)


class SpectralExcess:
    """excess(photos, reconstructions) per image pair, for [0, 1] images of IMAGE_SHAPE: a Keras
    op, so it trains a decoder (vaegan.py's `spectral_excess_weight`)."""

    def __init__(self, min_frequency: float = PATTERN_BAND[0], neighbourhood: int = 3, margin: float = 0.0,
                 max_frequency: float = 1.0) -> None:
        if neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood must be odd (centred on each bin), got {neighbourhood}")
        if not 0 <= min_frequency < max_frequency:
            raise ValueError(f"the band [{min_frequency}, {max_frequency}] holds no bin")
        height, width = IMAGE_SHAPE[:2]
        self.margin = margin
        self.window = ops.convert_to_tensor(np.outer(np.hanning(height), np.hanning(width))[None, None], "float32")
        frequency = frequencies((height, width))
        band = (frequency >= min_frequency) & (frequency <= max_frequency)
        self.band = ops.convert_to_tensor(band, "float32")
        self._band_share = ops.convert_to_tensor(band / band.sum(), "float32")  # a mean over the band, per image
        self.shifts = [(dy, dx) for dy in range(-(neighbourhood // 2), neighbourhood // 2 + 1)
                       for dx in range(-(neighbourhood // 2), neighbourhood // 2 + 1)]

    def log_power(self, images):
        """(n, height, width): the log of each image's windowed power, averaged over neighbouring bins."""
        x = ops.transpose(ops.cast(images, "float32"), (0, 3, 1, 2))  # fft2 works on the last two axes
        x = (x - ops.mean(x, axis=(2, 3), keepdims=True)) * self.window
        real, imag = ops.fft2((x, ops.zeros_like(x)))
        power = ops.sum(ops.square(real) + ops.square(imag), axis=1)
        # the spectrum wraps around, so its neighbours do too
        smoothed = sum(ops.roll(ops.roll(power, dy, axis=1), dx, axis=2) for dy, dx in self.shifts)
        return ops.log(smoothed / len(self.shifts) + POWER_FLOOR)

    def excess(self, photos, reconstructions):
        """(n,): the mean over the band's bins of the reconstruction's log power above its photo's
        by more than `margin`."""
        above = ops.relu(self.log_power(reconstructions) - ops.stop_gradient(self.log_power(photos)) - self.margin)
        return ops.sum(above * self._band_share, axis=(1, 2))
