"""The generator's encoders and decoders: the paper's dense CVAE and the convolutional default."""

from __future__ import annotations

import keras
from keras import layers, ops

from fashiongen.imaging import IMAGE_HEIGHT, IMAGE_SHAPE, IMAGE_WIDTH

ARCHITECTURES = ("conv", "paper", "vaegan")


DEFAULT_ARCH = "conv"


PIXEL_VALUES = IMAGE_HEIGHT * IMAGE_WIDTH * 3


def build_paper_encoder(latent_dim: int = 100) -> keras.Model:
    """image -> (mean, log_var); the paper's encoder sees no labels."""
    image = keras.Input(IMAGE_SHAPE, name="image")
    x = image
    for block, filters in enumerate((8, 16, 32, 64), start=1):
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.MaxPooling2D(3, padding="same", name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(150, activation="selu", name="dense150")(x)
    x = layers.Dense(100, activation="selu", name="dense100")(x)
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_var = layers.Dense(latent_dim, name="log_var")(x)
    return keras.Model(image, [mean, log_var], name="paper_encoder")


def build_paper_decoder(latent_dim: int, n_labels: int) -> keras.Model:
    """(code, labels) -> image, through Dense(100) and Dense(150) selu layers."""
    code = keras.Input((latent_dim,), name="code")
    labels = keras.Input((n_labels,), name="labels")
    x = layers.Concatenate(name="code_and_labels")([code, labels])
    x = layers.Dense(100, activation="selu", name="dense100")(x)
    x = layers.Dense(150, activation="selu", name="dense150")(x)
    x = layers.Dense(PIXEL_VALUES, activation="sigmoid", name="pixels")(x)
    image = layers.Reshape(IMAGE_SHAPE, name="image")(x)
    return keras.Model([code, labels], image, name="paper_decoder")


def build_conv_encoder(latent_dim: int, n_labels: int) -> keras.Model:
    """(image, labels) -> (mean, log_var): four stride-2 convolutions, labels joined before the dense layer."""
    image = keras.Input(IMAGE_SHAPE, name="image")
    labels = keras.Input((n_labels,), name="labels")
    x = _strided_blocks(image, layers.Conv2D, (32, 64, 128, 256), "conv")
    x = layers.Flatten(name="flatten")(x)  # 5 x 4 x 256
    x = layers.Concatenate(name="features_and_labels")([x, labels])
    x = layers.Dense(256, name="dense")(x)
    x = layers.LeakyReLU(0.2, name="dense_act")(x)
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_var = layers.Dense(latent_dim, name="log_var")(x)
    return keras.Model([image, labels], [mean, log_var], name="conv_encoder")


def build_conv_decoder(latent_dim: int, n_labels: int) -> keras.Model:
    """(code, labels) -> image: 5x4x256 grown by four stride-2 transposed convolutions to 80x64,
    then cropped to 80x60."""
    code, labels, x = _decoder_stem(latent_dim, n_labels)
    x = _strided_blocks(x, layers.Conv2DTranspose, (128, 64, 32, 16), "deconv")
    x = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="pixels")(x)  # 80 x 64
    image = layers.Cropping2D(((0, 0), (2, 2)), name="image")(x)
    return keras.Model([code, labels], image, name="conv_decoder")


def build_upsample_decoder(latent_dim: int, n_labels: int, filters: tuple[int, ...] = (96, 64, 32, 16),
                           noise: bool = False, refine: bool = False) -> keras.Model:
    """(code, labels) -> image: 5x4x256 grown by four bilinear upsamplings, each followed by a 3x3
    convolution, to 80x64, then cropped to 80x60. A stride-2 transposed convolution paints a 2x2
    lattice as soon as an adversarial loss rewards high frequencies (Odena et al. 2016,
    "Deconvolution and checkerboard artifacts"); upsampling then convolving cannot, and bilinear
    rather than nearest-neighbour upsampling leaves no block edges for it to sharpen into a plaid
    (nearest-neighbour decoders grew one under the adversarial loss here). These widths
    cost about 85 M multiply-adds per image (the transposed-convolution decoder about 45 M): twice
    them made an adversarial step too slow for this project's 2-core CPU. `noise`: a `NoiseInjection`
    after every block's normalisation. `refine`: a `ResidualRefinement` after each of the two finest
    blocks (about 95 M multiply-adds more, more than doubling the decoder's cost)."""
    code, labels, x = _decoder_stem(latent_dim, n_labels)
    for block, n in enumerate(filters, start=1):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{block}")(x)
        x = layers.Conv2D(n, 3, padding="same", name=f"conv{block}")(x)
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        if noise:
            x = NoiseInjection(seed=block, name=f"noise{block}")(x)
        x = layers.LeakyReLU(0.2, name=f"act{block}")(x)
        if refine and block > len(filters) - 2:
            x = ResidualRefinement(n, 2 * n, name=f"refine{block}")(x)
    x = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="pixels")(x)  # 80 x 64
    image = layers.Cropping2D(((0, 0), (2, 2)), name="image")(x)
    return keras.Model([code, labels], image, name="upsample_decoder")


# the inference maps' seeds start here, apart from the training streams' (seeded by block: 1-4)
INFERENCE_NOISE_SEED = 1000


@keras.saving.register_keras_serializable(package="fashiongen")
class NoiseInjection(layers.Layer):
    """StyleGAN's noise input (Karras et al. 2019, section 3.2): one map of Gaussian noise added to
    every channel, scaled per channel by a learned weight that starts at zero, so a warm start
    computes what it computed before. Without it, fine texture must be made from the code through
    convolutions that repeat over the upsampling grid, and comes out as a repeating pattern (their
    observation; the plaid here). In training every image draws its own map (from a stream seeded by
    `seed`, not by --seed; under a mirrored strategy each replica draws the same maps, as Keras'
    seeded layers do); in inference every image gets the same fixed map, so the same code and
    labels always give the same pixels."""

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="scale")

    def call(self, x, training=None):
        if training:
            shape = ops.shape(x)
            noise = keras.random.normal((shape[0], shape[1], shape[2], 1), seed=self.seed_generator)
        else:  # an integer seed: the same map at every call, whatever the batch
            noise = keras.random.normal((1, x.shape[1], x.shape[2], 1), seed=INFERENCE_NOISE_SEED + (self.seed or 0))
        return x + self.scale * noise

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="fashiongen")
class ResidualRefinement(layers.Layer):
    """x + conv(LeakyReLU(conv(x))), two 3x3 convolutions through `width` channels at one scale.
    The decoder's finest blocks have one convolution of 16 or 32 channels each to draw every edge
    and print from; this gives them more. The second convolution starts at zero, so a warm start
    computes what it computed before."""

    def __init__(self, channels: int, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels, self.width = channels, width
        # the parent's dtype policy, as Keras' own composite layers pass theirs on
        self.expand = layers.Conv2D(width, 3, padding="same", name="expand", dtype=self.dtype_policy)
        self.project = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", name="project",
                                     dtype=self.dtype_policy)

    def build(self, input_shape) -> None:
        self.expand.build(input_shape)
        self.project.build(tuple(input_shape[:-1]) + (self.width,))

    def call(self, x):
        return x + self.project(ops.leaky_relu(self.expand(x), 0.2))

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels, "width": self.width}


# the optional decoder layers, by the train_generator flag that adds them
OPTIONAL_LAYERS = {NoiseInjection: "--decoder-noise", ResidualRefinement: "--decoder-refine"}


def optional_layers(model: keras.Model) -> dict[str, str]:
    """`model`'s optional layers (none in a plain decoder): each one's name -> the flag that adds it."""
    return {layer.name: OPTIONAL_LAYERS[type(layer)] for layer in model.layers if type(layer) in OPTIONAL_LAYERS}


def _decoder_stem(latent_dim: int, n_labels: int):
    """The decoders' inputs (code, labels) and their joint dense projection to a 5x4x256 grid."""
    code = keras.Input((latent_dim,), name="code")
    labels = keras.Input((n_labels,), name="labels")
    x = layers.Concatenate(name="code_and_labels")([code, labels])
    x = layers.Dense(5 * 4 * 256, name="dense")(x)
    x = layers.LeakyReLU(0.2, name="dense_act")(x)
    return code, labels, layers.Reshape((5, 4, 256), name="grid")(x)


def _strided_blocks(x, convolution: type, filters: tuple[int, ...], prefix: str):
    """Stride-2 `convolution` (4x4) -> BatchNormalization -> LeakyReLU(0.2) per entry of `filters`;
    layers named `<prefix>1`, `bn1`, `act1`, ... as the saved models' layers are."""
    for block, n in enumerate(filters, start=1):
        x = convolution(n, 4, strides=2, padding="same", name=f"{prefix}{block}")(x)
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        x = layers.LeakyReLU(0.2, name=f"act{block}")(x)
    return x
