"""A perceptual distance from a classifier trained here: LPIPS's recipe without its downloadable weights.

The per-pixel likelihood scores a blurred edge almost as well as a sharp one; a network's features
do not. LPIPS (Zhang et al. 2018) compares two images by the features of an ImageNet network at a
few depths, each feature vector scaled to unit length along its channels, squared differences
averaged over positions and summed over depths (its "baseline" form, without the learned
per-channel weights). ImageNet weights cannot be downloaded here, so the network is one of our
own classifiers: the compact one (four VGG-like blocks) trained on the duplicate-grouped split,
frozen. It must not be the classifier that evaluates the generator (evaluate_generator.py's,
the shipped one), or the evaluation would grade what the generator was trained to match.

`random_features` is the control: the same layers with random weights, features that know nothing
of this dataset's labels (random networks' features already describe texture: He, Wang and
Hopcroft 2016, "A powerful generative model using random weights for the deep image representation").
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from fashiongen.errors import GeneratorError
from fashiongen.imaging import IMAGE_SHAPE
from fashiongen.labeler.model import DEFAULT_WIDTH, compact_blocks
from fashiongen.generator.vaegan import random_offset, shifted

# the widest blur the perceptual distance takes, in pixels: 3 sigma must stay inside the 60 px side to be
# mirrored in, and wider would leave little of a product to compare
MAX_BLUR = 8.0
# the last activation of each block of the compact classifier (fashiongen/labeler/model.py)
COMPACT_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2")


def random_features(seed: int, width: int = DEFAULT_WIDTH) -> keras.Model:
    """The compact classifier's convolutions (fashiongen/labeler/model.py) up to its last block, its
    layer names kept, with He-normal random weights drawn from `seed` and never trained. No batch
    normalisation: untrained, it would be the identity; He-normal weights keep each block's scale."""
    rng = np.random.default_rng(seed % 2**32)  # any int, negative too
    image = keras.Input(IMAGE_SHAPE, name="image")
    network = keras.Model(image, compact_blocks(image, width, batch_norm=False), name="random_features")
    for layer in network.layers:
        if isinstance(layer, layers.Conv2D):
            shape = tuple(layer.kernel.shape)
            layer.set_weights([rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:3])), shape).astype("float32")])
    return network


class PerceptualDistance:
    """distance(a, b) per image pair for [0, 1] images of the classifier's input shape. The
    classifier is frozen (its layers set untrainable) so that no loss moves it."""

    def __init__(self, classifier: keras.Model, layers: tuple[str, ...] = COMPACT_LAYERS, shift: int = 0,
                 seed: int | None = None, blur: float = 0.0) -> None:
        missing = [name for name in layers if name not in {layer.name for layer in classifier.layers}]
        if missing:
            raise GeneratorError(f"the perceptual classifier has no layer {', '.join(missing)}: it takes a "
                                 "compact classifier (train_classifier.py --arch compact)")
        self.features = keras.Model(classifier.input, [classifier.get_layer(name).output for name in layers],
                                    name="perceptual_features")
        self.features.trainable = False
        # a random offset of up to `shift` pixels each way for both images of every call: the
        # classifier's pooling grid then never lines up with the image for long (with a fixed grid
        # the decoder painted a plaid of its cell size on watches, 2026-12-04-decoder-ceiling.md)
        self.shift = shift
        self.seed_generator = keras.random.SeedGenerator(seed) if shift > 0 else None
        # a Gaussian blur of both images first: the plaid of 6-8 px cells survives any choice of blocks
        # or offset (2026-12-06 plaid note), so the classifier may only see what is coarser than it
        self.blur_taps = gaussian_taps(blur) if blur > 0 else None

    def distance(self, a, b):
        """(rows,) distances; 0 for identical images."""
        n = ops.shape(a)[0]
        if self.shift > 0:  # one offset for both: the distance compares them position by position
            offset = random_offset(self.shift, self.seed_generator)
            a, b = shifted(a, offset, self.shift), shifted(b, offset, self.shift)
        both = ops.concatenate([a, b])
        if self.blur_taps is not None:
            both = blurred(both, self.blur_taps)
        both = self.features(both, training=False)  # one call: half the overhead
        if not isinstance(both, (list, tuple)):  # a model of one output returns it bare (--perceptual-blocks 1)
            both = [both]
        total = 0.0
        for features in both:
            unit = features / (ops.sqrt(ops.sum(ops.square(features), axis=-1, keepdims=True)) + 1e-10)
            total = total + ops.mean(ops.sum(ops.square(unit[:n] - unit[n:]), axis=-1), axis=(1, 2))
        return total


def gaussian_taps(sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of `sigma` pixels, cut at 3 sigma."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def blurred(images, taps: np.ndarray):
    """[0, 1] NHWC images blurred per channel by `taps` along rows, then columns; the edges mirrored
    in, so a white background stays white."""
    radius, channels = len(taps) // 2, images.shape[-1]
    padded = ops.pad(images, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    rows = ops.convert_to_tensor(np.tile(taps[:, None, None, None], (1, 1, channels, 1)))
    columns = ops.convert_to_tensor(np.tile(taps[None, :, None, None], (1, 1, channels, 1)))
    return ops.depthwise_conv(ops.depthwise_conv(padded, rows, padding="valid"), columns, padding="valid")
