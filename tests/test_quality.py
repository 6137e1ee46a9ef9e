"""Generator quality numbers: Fréchet distance, k-NN precision/recall and density/coverage against
hand-computed cases, reconstruction metrics against the CVAE's own loss, conditional accuracy (the
colour too) against labeling the generated images directly, sharpness and lattice ratios on real
photos, blurred ones and ones with a checkerboard, the floor's photos, and the whole evaluation on
the tiny dataset."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import make_tiny_dataset
from helpers import SCHEMA, fixed_batch, force_mean_codes, fresh_test_step
from scipy.ndimage import gaussian_filter

from fashiongen.dataset import FashionData, load_dataset
from fashiongen.generator.cvae import CVAE, build_generator
from fashiongen.generator.generator import Generator
from fashiongen.generator.prior import LatentPrior
from fashiongen.generator.quality import (
    accuracy_on_real_pairs,
    conditional_accuracy,
    density_coverage,
    evaluate_generator,
    floor_rows,
    frechet_distance,
    knn_precision_recall,
    laplacian_energy,
    lattice_energy,
    lattice_ratio,
    log_power_spectra,
    mean_power_spectrum,
    pattern_ratio,
    pattern_ratios,
    penultimate_features,
    real_conditional_accuracy,
    real_validation,
    reconstruction_metrics,
    sharpness_ratio,
    texture_ratio,
)
from fashiongen.labeler.labeler import Labeler
from fashiongen.schema import LabelSchema
from fashiongen.splits import Split, make_split

PAIRS = [("Topwear", "Men"), ("Bags", "Women"), ("Shoes", "Girls")]
SEEDS = 6
COLOURS = ("Blue", "Red", "Black")
COLOUR_SCHEMA = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", COLOURS),))
# a catalog labeler's: more heads, its colour head at another offset than the generator's
CATALOG_SCHEMA = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders,
                             (("articleType", ("Shirts", "Tshirts")), ("baseColour", COLOURS)))


def train_tiny(arch: str, images: np.ndarray, conditions: np.ndarray) -> Generator:
    keras.utils.set_random_seed(1)
    model = build_generator(arch, SCHEMA.size, latent_dim=8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(images, conditions, batch_size=4, epochs=3, verbose=0)
    return Generator(model.encoder, model.decoder, SCHEMA, arch)


@pytest.fixture(scope="module")
def generators() -> dict[str, Generator]:
    images, conditions = fixed_batch(8, seed=2)
    return {arch: train_tiny(arch, images, conditions) for arch in ("paper", "conv")}


def threshold_labeler(reference: np.ndarray, schema: LabelSchema = SCHEMA) -> Labeler:
    """A classifier whose answers depend on the image: Topwear when an image is redder than the
    median of `reference`, else Bags; Men when greener, else Women; and, when `schema` has a
    baseColour head, Red when bluer, else Blue. Its "features" are the three channel means. (A freshly
    built CNN answers the same for every generated image.)"""
    means = reference.astype(np.float64).mean(axis=(1, 2)) / 255.0
    red, green, blue = np.median(means, axis=0)
    image = keras.Input((80, 60, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D(name="features")(image)
    scores = keras.layers.Dense(schema.size, activation="sigmoid", name="scores")(features)
    model = keras.Model(image, scores)
    kernel, bias, steep = np.zeros((3, schema.size), np.float32), np.full(schema.size, -50.0, np.float32), 1e5
    sub, gender = schema.slices["subCategory"].start, schema.slices["gender"].start
    units = [(sub + schema.sub_categories.index("Topwear"), 0, 1, red),
             (sub + schema.sub_categories.index("Bags"), 0, -1, red),
             (gender + schema.genders.index("Men"), 1, 1, green),
             (gender + schema.genders.index("Women"), 1, -1, green)]
    if "baseColour" in schema.heads:
        colour, colours = schema.slices["baseColour"].start, schema.heads["baseColour"]
        units += [(colour + colours.index("Red"), 2, 1, blue), (colour + colours.index("Blue"), 2, -1, blue)]
    for unit, channel, sign, threshold in units:
        kernel[channel, unit], bias[unit] = sign * steep, -sign * steep * threshold
    model.get_layer("scores").set_weights([kernel, bias])
    return Labeler(model, schema)


def pair_images(generator: Generator, pair: tuple[str, str]) -> np.ndarray:
    """What the app shows for seeds 0..SEEDS-1: one generate() call per seed."""
    return np.concatenate([generator.generate(*pair, seed, 1) for seed in range(SEEDS)])


@pytest.fixture(scope="module")
def labeler(generators) -> Labeler:
    return threshold_labeler(pair_images(generators["conv"], PAIRS[0]))


# ----------------------------------------------------------------------------- Fréchet distance


def sign_design(scales: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """All 2^d points centre ± scales: their sample covariance is exactly diagonal, with variances
    scales^2 * n / (n - 1)."""
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=len(scales))))
    return centre + signs * scales


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    points = np.random.default_rng(0).normal(size=(300, 5))
    assert frechet_distance(points, points) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_the_diagonal_closed_form() -> None:
    mu1, a = np.array([0.0, 1.0, -2.0]), np.array([1.0, 2.0, 0.5])
    mu2, b = np.array([3.0, 1.0, 0.0]), np.array([3.0, 1.0, 1.0])
    real, fake = sign_design(a, mu1), sign_design(b, mu2)
    n = len(real)
    s1, s2 = a**2 * n / (n - 1), b**2 * n / (n - 1)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))  # = 13 + 8/7 * 5.25
    assert expected == pytest.approx(13 + 6.0)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    one_d = frechet_distance(np.array([[1.0], [3.0]]), np.array([[10.0], [14.0]]))
    assert one_d == pytest.approx((2 - 12) ** 2 + (np.sqrt(2) - np.sqrt(8)) ** 2)


def test_frechet_distance_is_symmetric_and_grows_with_a_mean_shift() -> None:
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(200, 4)), rng.normal(size=(150, 4)) @ rng.normal(size=(4, 4))
    assert frechet_distance(real, fake) == pytest.approx(frechet_distance(fake, real), rel=1e-6)
    shifted = [frechet_distance(real, real + shift) for shift in (0.5, 1.0, 2.0)]
    # same covariance: only the means differ, by `shift` in each of 4 dimensions
    assert shifted == pytest.approx([4 * 0.25, 4 * 1.0, 4 * 4.0], abs=1e-6)


@pytest.mark.parametrize("rows", [0, 1])
def test_frechet_distance_needs_two_rows(rows: int) -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(np.ones((rows, 3)), np.ones((5, 3)))


# ----------------------------------------------------------------------------- k-NN precision/recall


def test_knn_of_identical_sets_is_perfect() -> None:
    points = np.random.default_rng(2).normal(size=(20, 3))
    assert knn_precision_recall(points, points) == {"precision": 1.0, "recall": 1.0}


def test_knn_of_far_apart_sets_is_zero() -> None:
    points = np.random.default_rng(3).normal(size=(20, 3))
    assert knn_precision_recall(points, points + 1000.0) == {"precision": 0.0, "recall": 0.0}


def test_knn_hand_computed_case() -> None:
    # k=1 radii: reals 0, 2, 4, 6 -> 2 each; fakes 1, 3 -> 2 and 30, 50 -> 20.
    # precision: 1 and 3 lie within 2 of a real, 30 and 50 do not -> 1/2.
    # recall: 0, 2 (near 1) and 4 (near 3) are covered; 6 is 3 from 3 and 24 from 30 -> 3/4.
    real = np.array([[0.0, 0], [2, 0], [4, 0], [6, 0]])
    fake = np.array([[1.0, 0], [3, 0], [30, 0], [50, 0]])
    assert knn_precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 0.75}


def test_knn_needs_more_than_k_rows() -> None:
    with pytest.raises(ValueError, match="at least 4 rows"):
        knn_precision_recall(np.zeros((3, 2)), np.ones((10, 2)), k=3)


# ----------------------------------------------------------------------------- density/coverage


def test_density_coverage_hand_computed_case() -> None:
    # k=1 radii of the reals 0, 2, 4, 6: 2 each. Strictly inside: fake 1 in the balls of 0 and 2,
    # 1.5 in those of 0 and 2, 3 in those of 2 and 4; fake 8 is exactly 2 from 6, on the border: in none.
    # density = 6 balls / (k=1 * 4 fakes) = 1.5; coverage: 0, 2, 4 hold a fake, 6 none -> 3/4.
    real = np.array([[0.0, 0], [2, 0], [4, 0], [6, 0]])
    fake = np.array([[1.0, 0], [1.5, 0], [3, 0], [8, 0]])
    assert density_coverage(real, fake, k=1) == {"density": 1.5, "coverage": 0.75}
    # k=2 radii: 0 -> 4, 2 -> 2, 4 -> 2, 6 -> 4. Balls holding each fake: 1 -> 0, 2 (2); 1.5 -> 0, 2 (2);
    # 3 -> 0, 2, 4, 6 (4); 8 -> 6 only (2 < 4) (1). density = (2 + 2 + 4 + 1) / (2 * 4) = 9/8; coverage 1.
    assert density_coverage(real, fake, k=2) == {"density": 9 / 8, "coverage": 1.0}


def test_density_coverage_of_far_apart_sets_is_zero() -> None:
    points = np.random.default_rng(3).normal(size=(20, 3))
    assert density_coverage(points, points + 1000.0) == {"density": 0.0, "coverage": 0.0}


# ----------------------------------------------------------------------------- sharpness and lattice


def smooth_photos(n: int, seed: int) -> np.ndarray:
    """Photo-like uint8 images: smoothed noise, so that the spectrum falls off with frequency."""
    noise = gaussian_filter(np.random.default_rng(seed).normal(size=(n, 80, 60, 3)), (0, 1.2, 1.2, 0))
    return np.clip(np.rint(128 + 50 * noise / noise.std()), 0, 255).astype(np.uint8)


def checkerboard(amplitude: int) -> np.ndarray:
    rows, columns = np.indices((80, 60))
    return (amplitude * np.where((rows + columns) % 2 == 0, 1, -1))[None, :, :, None]


def with_checkerboard(images: np.ndarray, amplitude: int) -> np.ndarray:
    return np.clip(images.astype(np.int64) + checkerboard(amplitude), 0, 255).astype(np.uint8)


def blurred(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(gaussian_filter(images.astype(np.float64), (0, 1, 1, 0))), 0, 255).astype(np.uint8)


def test_laplacian_energy_of_one_bright_pixel() -> None:
    image = np.zeros((1, 80, 60, 3), np.uint8)
    image[0, 40, 30] = 255
    # the Laplacian is 4 at the pixel and -1 at its four neighbours, in each channel, over the 78 x 58 interior
    assert laplacian_energy(image) == pytest.approx([(16 + 4) / (78 * 58)])
    assert laplacian_energy(np.full((2, 80, 60, 3), 77, np.uint8)) == pytest.approx([0, 0])


def test_lattice_energy_peaks_for_period_two_patterns_only() -> None:
    rows, columns = np.indices((80, 60))
    patterns = {"both": (rows + columns) % 2, "y": rows % 2, "x": columns % 2, "period 8": (columns // 4) % 2}
    images = np.stack([np.repeat((100 + 50 * pattern)[:, :, None], 3, axis=2) for pattern in patterns.values()])
    peak, ring = lattice_energy(images.astype(np.uint8)).T
    assert (peak[:3] > 1000 * ring[:3]).all()  # a pure lattice in either direction is all peak
    assert peak[3] < ring[3]  # stripes 8 pixels wide are no lattice
    assert lattice_ratio(lattice_energy(images[:1]), lattice_energy(images[3:])) > 1000


def test_sharpness_and_lattice_ratios_of_photo_like_images() -> None:
    real, other = smooth_photos(150, seed=0), smooth_photos(150, seed=1)
    real_sharpness, real_lattice = laplacian_energy(real), lattice_energy(real)
    assert sharpness_ratio(laplacian_energy(other), real_sharpness) == pytest.approx(1.0, abs=0.05)
    assert lattice_ratio(lattice_energy(other), real_lattice) == pytest.approx(1.0, abs=0.05)
    assert sharpness_ratio(laplacian_energy(blurred(other)), real_sharpness) < 0.5
    lattice = with_checkerboard(other, 3)  # 3 of 255, under the images' own spread of 50
    assert lattice_ratio(lattice_energy(lattice), real_lattice) > 2
    assert sharpness_ratio(laplacian_energy(np.zeros_like(other)), np.zeros(3)) is None


def stripes(period: float, amplitude: int) -> np.ndarray:
    """Vertical stripes of `period` pixels (not a whole number: between two FFT bins' periods)."""
    return (amplitude * np.sin(2 * np.pi * np.arange(60) / period))[None, None, :, None]


def with_pattern(images: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images.astype(np.float64) + pattern), 0, 255).astype(np.uint8)


def test_texture_ratio_finds_a_texture_the_lattice_ratio_misses() -> None:
    """Stripes of period 2.2 pixels (3 bins from the Nyquist frequency: what a VAE-GAN painted once
    its period-2 lattice was penalised, docs/experiments/2026-12-02-conv-decoder-gan.md) fall in
    lattice_ratio's ring, which reads them as less lattice; texture_ratio sees them."""
    real, other = smooth_photos(150, seed=0), smooth_photos(150, seed=1)
    real_spectrum = mean_power_spectrum(real)
    assert texture_ratio(mean_power_spectrum(other), real_spectrum) == pytest.approx(1.0, abs=0.35)
    assert texture_ratio(mean_power_spectrum(blurred(other)), real_spectrum) < 0.5
    textured = with_pattern(other, stripes(2.2, 6))
    assert texture_ratio(mean_power_spectrum(textured), real_spectrum) > 5
    assert lattice_ratio(lattice_energy(textured), lattice_energy(real)) < 1  # the blind spot
    assert texture_ratio(mean_power_spectrum(other[:0]), real_spectrum) is None


def test_floor_sharpness_and_lattice_on_real_photos(shared_dataset) -> None:
    """Real training photos with the validation rows' labels score about 1 on both; blurring them
    drops the sharpness, a faint checkerboard (2 of 255) raises the lattice ratio well above 1."""
    split = make_split("random", shared_dataset, 42)
    validation = split.validation[:600]
    styles = shared_dataset.styles.iloc[validation]
    real = shared_dataset.images[validation]
    rows, levels = floor_rows(shared_dataset.styles.iloc[split.train], styles, seed=0)
    floor = shared_dataset.images[split.train[rows]]
    assert levels["subCategory+gender+baseColour"] > 0.9 * len(validation)
    real_sharpness, real_lattice = laplacian_energy(real), lattice_energy(real)
    assert sharpness_ratio(laplacian_energy(floor), real_sharpness) == pytest.approx(1.0, abs=0.15)
    assert lattice_ratio(lattice_energy(floor), real_lattice) == pytest.approx(1.0, abs=0.1)
    assert sharpness_ratio(laplacian_energy(blurred(floor)), real_sharpness) < 0.3
    assert lattice_ratio(lattice_energy(with_checkerboard(floor, 2)), real_lattice) > 3
    real_spectrum = mean_power_spectrum(real)
    assert texture_ratio(mean_power_spectrum(floor), real_spectrum) == pytest.approx(1.0, abs=0.35)
    assert texture_ratio(mean_power_spectrum(with_pattern(floor, stripes(2.2, 6))), real_spectrum) > 2


def plaid(period: float, amplitude: int) -> np.ndarray:
    """Soft light and dark squares of half `period` pixels, as the 2026-12-04 perceptual run painted
    on watches (sines: no harmonics of periods under 4 pixels, where texture_ratio would see them)."""
    rows, columns = np.indices((80, 60))
    return (amplitude * np.sin(2 * np.pi * rows / period + 0.3)
            * np.sin(2 * np.pi * columns / period + 0.7))[None, :, :, None]


def test_pattern_ratio_finds_a_plaid_on_one_class_that_texture_ratio_misses() -> None:
    """A plaid of 7-pixel squares on one class of three: pattern_ratio names that class and reads
    over twice real photos' level; texture_ratio (periods under 4 px, all images) barely moves;
    without the plaid, another sample of the same kind of image reads about 1, a blur below 1."""
    real, other = smooth_photos(180, seed=0), smooth_photos(180, seed=1)
    classes = np.repeat(["Bags", "Shoes", "Watches"], 60)
    real_spectra = log_power_spectra(real, classes)
    assert sorted(real_spectra) == ["Bags", "Shoes", "Watches"]
    ratio, _ = pattern_ratio(log_power_spectra(other, classes), real_spectra)
    assert ratio == pytest.approx(1.0, abs=0.3)
    assert pattern_ratio(log_power_spectra(blurred(other), classes), real_spectra)[0] < 1
    painted = other.copy()
    painted[classes == "Watches"] = with_pattern(other[classes == "Watches"], plaid(14, 30))  # (spread: 50)
    ratio, worst = pattern_ratio(log_power_spectra(painted, classes), real_spectra)
    assert worst == "Watches" and ratio > 2
    assert texture_ratio(mean_power_spectrum(painted), mean_power_spectrum(real)) < 1.6  # the blind spot
    # a class under min_images has no spectrum; with no class in common there is no ratio
    assert sorted(log_power_spectra(other, classes, min_images=61)) == []
    assert pattern_ratio(log_power_spectra(other, classes, min_images=61), real_spectra) == (None, None)


def test_pattern_ratios_reads_each_class_and_the_worst_is_pattern_ratio() -> None:
    """The plaid on watches only: watches read over 2, the untouched classes about 1, and
    pattern_ratio is the largest of them."""
    real, other = smooth_photos(180, seed=0), smooth_photos(180, seed=1)
    classes = np.repeat(["Bags", "Shoes", "Watches"], 60)
    painted = other.copy()
    painted[classes == "Watches"] = with_pattern(other[classes == "Watches"], plaid(14, 30))
    real_spectra, fake_spectra = log_power_spectra(real, classes), log_power_spectra(painted, classes)
    ratios = pattern_ratios(fake_spectra, real_spectra)
    assert sorted(ratios) == ["Bags", "Shoes", "Watches"]
    assert ratios["Watches"] > 2 and ratios["Bags"] == pytest.approx(1.0, abs=0.3)
    assert ratios["Shoes"] == pytest.approx(1.0, abs=0.3)
    assert pattern_ratio(fake_spectra, real_spectra) == (ratios["Watches"], "Watches")
    assert pattern_ratios(fake_spectra, {}) == {}


def test_pattern_ratio_of_the_floor_and_a_plaid_on_real_watches(shared_dataset) -> None:
    """Real training photos with the validation rows' labels stay at 1.1-1.6 in every sub-category
    of 50+ validation photos; a plaid of amplitude 20 of 255 on the watches alone is read, and named."""
    split = make_split("random", shared_dataset, 42)
    styles = shared_dataset.styles.iloc[split.validation]
    rows, _ = floor_rows(shared_dataset.styles.iloc[split.train], styles, seed=0)
    floor = shared_dataset.images[split.train[rows]]
    classes = styles["subCategory"].to_numpy()
    real_spectra = log_power_spectra(shared_dataset.images[split.validation], classes)
    assert {"Topwear", "Shoes", "Watches", "Bags"} <= set(real_spectra)
    ratio, _ = pattern_ratio(log_power_spectra(floor, classes), real_spectra)
    assert 1.0 < ratio < 1.8
    watches = classes == "Watches"
    floor[watches] = with_pattern(floor[watches], plaid(14, 20))
    ratio, worst = pattern_ratio(log_power_spectra(floor, classes), real_spectra)
    assert worst == "Watches" and ratio > 2.5


# ----------------------------------------------------------------------------- the floor


def test_floor_rows_match_the_labels_as_tightly_as_the_training_photos_allow() -> None:
    columns = ["subCategory", "gender", "baseColour"]
    train = pd.DataFrame([("Topwear", "Men", "Blue"), ("Topwear", "Men", "Red"), ("Topwear", "Women", "Blue"),
                          ("Bags", "Women", "Black"), ("Topwear", "Men", "NA")] + [("Shoes", "Men", "Blue")] * 20,
                         columns=columns)
    validation = pd.DataFrame([("Topwear", "Men", "Blue"),  # colour level: row 0 only
                               ("Topwear", "Men", "Green"),  # no Green: sub + gender, rows 0, 1, 4
                               ("Topwear", "Men", "NA"),  # no colour: never matched on "NA"
                               ("Topwear", "Boys", "Blue"),  # sub-category: rows 0, 1, 2, 4
                               ("Dress", "Women", "Blue")]  # nothing alike: any row
                              + [("Shoes", "Men", "Blue")] * 10, columns=columns)
    rows, levels = floor_rows(train, validation, seed=0)
    assert len(rows) == len(validation) and rows[0] == 0
    assert rows[1] in (0, 1, 4) and rows[2] in (0, 1, 4) and rows[3] in (0, 1, 2, 4)
    assert 0 <= rows[4] < len(train) and (rows[5:] >= 5).all()
    assert levels == {"subCategory+gender+baseColour": 11, "subCategory+gender": 2, "subCategory": 1, "any": 1}
    np.testing.assert_array_equal(floor_rows(train, validation, seed=0)[0], rows)  # deterministic
    assert not np.array_equal(floor_rows(train, validation, seed=1)[0][5:], rows[5:])  # the seed draws
    with pytest.raises(ValueError, match="training part is empty"):
        floor_rows(train[:0], validation)


# ----------------------------------------------------------------------------- reconstruction


@pytest.mark.parametrize("arch", ["paper", "conv"])
def test_reconstruction_metrics_equal_the_cvae_loss_and_tf_ssim(generators, arch: str) -> None:
    """With log_var forced very negative the sampled code is the mean, so the loss terms no longer
    depend on whose noise was drawn: reconstruction_metrics (NumPy) must equal CVAE.test_step
    (Keras). MSE and SSIM use the deterministic reconstruction, which is the CVAE's forward pass."""
    generator = generators[arch]
    images = np.random.default_rng(4).integers(0, 256, (5, 80, 60, 3), dtype=np.uint8)
    x = images / np.float32(255)
    conditions = fixed_batch(5, seed=4)[1]

    encoder = keras.models.clone_model(generator.encoder)
    encoder.set_weights(generator.encoder.get_weights())
    forced = force_mean_codes(CVAE(encoder, generator.decoder, arch))
    expected = fresh_test_step(forced, x, conditions)
    for batch_size in (256, 2):  # one batch, and batches of 2, 2, 1 weighted by their images
        got = reconstruction_metrics(Generator(encoder, generator.decoder, SCHEMA, arch), images,
                                             conditions, batch_size=batch_size)
        assert got["val_loss"] == pytest.approx(expected["loss"], rel=1e-5)
        assert got["reconstruction_loss"] == pytest.approx(expected["reconstruction_loss"], rel=1e-5)
        assert got["latent_loss"] == pytest.approx(expected["latent_loss"], rel=1e-5)
        assert got["rounded_accuracy"] == pytest.approx(expected["rounded_accuracy"], abs=1e-4)

    metrics = reconstruction_metrics(generator, images, conditions, batch_size=2)
    reconstruction = np.asarray(CVAE(generator.encoder, generator.decoder, arch)((x, conditions)))
    assert metrics["mse"] == pytest.approx(np.mean((x - reconstruction) ** 2), rel=1e-5)
    assert metrics["ssim"] == pytest.approx(float(tf.reduce_mean(tf.image.ssim(x, reconstruction, 1.0))), abs=1e-5)
    assert -1.0 <= metrics["ssim"] <= 1.0 and metrics["mse"] > 0


# ----------------------------------------------------------------------------- conditional accuracy


def test_conditional_accuracy_matches_labeling_the_generated_images(generators, labeler) -> None:
    generator = generators["conv"]
    result = conditional_accuracy(generator, labeler, PAIRS, seeds=SEEDS)
    expected, hits = [], np.zeros(2)
    for sub_category, gender in PAIRS:
        predictions = labeler.predict(pair_images(generator, (sub_category, gender)))
        sub_ok = np.mean([p.top_sub_category[0] == sub_category for p in predictions])
        gender_ok = np.mean([p.top_gender[0] == gender for p in predictions])
        expected.append({"subCategory": sub_category, "gender": gender, "n": SEEDS,
                         "subCategory_accuracy": sub_ok, "gender_accuracy": gender_ok})
        hits += (sub_ok, gender_ok)
    # pytest 9.2 refuses nested structures in approx: compare pair by pair
    assert len(result["per_pair"]) == len(expected)
    for got, wanted in zip(result["per_pair"], expected):
        assert got == pytest.approx(wanted)
    # the labeler splits the first pair's images at their median: the numbers are not all 0 or 1
    assert 0 < result["per_pair"][0]["subCategory_accuracy"] < 1 and 0 < result["per_pair"][0]["gender_accuracy"] < 1
    assert result["subCategory_accuracy"] == pytest.approx(hits[0] / len(PAIRS))
    assert result["gender_accuracy"] == pytest.approx(hits[1] / len(PAIRS))
    assert result["n_images"] == SEEDS * len(PAIRS)


def test_conditional_accuracy_without_pairs(generators, labeler) -> None:
    assert conditional_accuracy(generators["conv"], labeler, [], seeds=2)["subCategory_accuracy"] is None


@pytest.fixture(scope="module")
def colour_generator() -> Generator:
    """An untrained colour-controlled conv generator whose latent prior saw Topwear/Men in Red 3 times
    and Blue once, Bags/Women in Black and Red, Shoes/Girls in Blue only."""
    keras.utils.set_random_seed(3)
    model = build_generator("conv", COLOUR_SCHEMA.size, latent_dim=16)
    generator = Generator(model.encoder, model.decoder, COLOUR_SCHEMA, "conv")
    seen = [("Topwear", "Men", "Red")] * 3 + [("Topwear", "Men", "Blue"), ("Bags", "Women", "Black"),
                                              ("Bags", "Women", "Red"), ("Shoes", "Girls", "Blue")]
    conditions = np.stack([generator.condition(*labels) for labels in seen])
    codes = np.random.default_rng(5).normal(size=(len(seen), 16))
    generator.prior = LatentPrior.fit(codes, conditions, len(SCHEMA.sub_categories), key_width=SCHEMA.size)
    return generator


def drawn_colour(generator: Generator, pair: tuple[str, str], seed: int) -> str:
    row = generator.conditions(*pair, seed, 1)[0]
    return generator.colours[int(row[generator.schema.slices["baseColour"]].argmax())]


@pytest.mark.parametrize("catalog", [CATALOG_SCHEMA, LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (
    ("articleType", ("Shirts", "Tshirts")), ("baseColour", COLOURS[::-1])))], ids=["same-order", "reordered"])
def test_colour_accuracy_is_judged_against_the_drawn_colour(colour_generator, catalog: LabelSchema) -> None:
    """"Any colour" draws a colour per seed from those seen with the pair; the labeler's colour (read
    by head name from a catalog schema with more heads) is compared with that drawn colour."""
    seeds = 10
    images = {pair: np.concatenate([colour_generator.generate(*pair, seed, 1) for seed in range(seeds)])
              for pair in PAIRS}
    labeler = threshold_labeler(np.concatenate(list(images.values())), catalog)
    result = conditional_accuracy(colour_generator, labeler, PAIRS, seeds=seeds)
    drawn = {pair: [drawn_colour(colour_generator, pair, seed) for seed in range(seeds)] for pair in PAIRS}
    assert set(drawn[("Topwear", "Men")]) == {"Red", "Blue"} and set(drawn[("Shoes", "Girls")]) == {"Blue"}
    hits = against_first_colour = 0
    for pair, entry in zip(PAIRS, result["per_pair"], strict=True):
        judged = [prediction.top("baseColour")[0] for prediction in labeler.predict(images[pair])]
        ok = sum(map(str.__eq__, judged, drawn[pair]))
        assert entry["baseColour_accuracy"] == pytest.approx(ok / seeds)
        hits += ok
        against_first_colour += judged.count(COLOURS[0])  # what a colour part left zero would be judged against
    assert result["baseColour_accuracy"] == pytest.approx(hits / (seeds * len(PAIRS)))
    assert 0 < result["baseColour_accuracy"] < 1 and hits != against_first_colour
    assert result["subCategory_accuracy"] is not None and result["gender_accuracy"] is not None


def test_colour_accuracy_is_none_without_colour_control_or_colour_head(generators, colour_generator,
                                                                       labeler) -> None:
    catalog = threshold_labeler(pair_images(colour_generator, PAIRS[0]), CATALOG_SCHEMA)
    assert conditional_accuracy(generators["conv"], catalog, PAIRS, seeds=2)["baseColour_accuracy"] is None
    assert conditional_accuracy(colour_generator, labeler, PAIRS, seeds=2)["baseColour_accuracy"] is None


def test_a_labeler_with_other_colour_classes_is_refused(colour_generator) -> None:
    other = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Blue", "Red", "White")),))
    labeler = threshold_labeler(pair_images(colour_generator, PAIRS[0]), other)
    with pytest.raises(ValueError, match="baseColour classes differ"):
        conditional_accuracy(colour_generator, labeler, PAIRS, seeds=2)


def one_hot_scores(schema: LabelSchema, answers: list[dict[str, str]]) -> np.ndarray:
    scores = np.zeros((len(answers), schema.size), np.float32)
    for row, answer in enumerate(answers):
        for column, name in answer.items():
            scores[row, schema.slices[column].start + schema.heads[column].index(name)] = 1.0
    return scores


def test_real_conditional_accuracy_per_head_hand_computed() -> None:
    styles = pd.DataFrame([("Topwear", "Men", "Red"), ("Topwear", "Men", "Blue"), ("Topwear", "Men", "Green"),
                           ("Bags", "Women", "Black"), ("Bags", "Women", "NA"), ("Shoes", "Girls", "Green")],
                          columns=["subCategory", "gender", "baseColour"])
    predicted = [("Topwear", "Men", "Red"), ("Bags", "Men", "Red"), ("Topwear", "Men", "Blue"),
                 ("Bags", "Women", "Black"), ("Bags", "Women", "Red"), ("Shoes", "Boys", "Blue")]
    scores = one_hot_scores(CATALOG_SCHEMA, [dict(zip(styles.columns, row)) for row in predicted])
    pairs = [("Topwear", "Men"), ("Bags", "Women"), ("Shoes", "Girls"), ("Watches", "Men")]  # no Watches photo
    result = real_conditional_accuracy(CATALOG_SCHEMA, scores, styles, pairs, colour=True)
    # Topwear/Men: sub 2/3, gender 3/3, colour 1/2 (Green is outside the head); Bags/Women: 1, 1, colour 1/1
    # (NA has none); Shoes/Girls: 1, 0, no colour the head knows
    assert result["subCategory_accuracy"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert result["gender_accuracy"] == pytest.approx((1 + 1 + 0) / 3)
    assert result["baseColour_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["pairs"] == 3
    assert real_conditional_accuracy(CATALOG_SCHEMA, scores, styles, pairs)["baseColour_accuracy"] is None


# ----------------------------------------------------------------------------- the whole evaluation


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> FashionData:
    root = tmp_path_factory.mktemp("quality")
    dataset = load_dataset(make_tiny_dataset(root / "fashion-small"), cache_dir=root / "cache")
    assert LabelSchema.from_styles(dataset.styles) == SCHEMA
    return dataset


def test_evaluation_of_one_validation_image_reports_no_distances(generators, labeler, tiny_data) -> None:
    split = make_split("random", tiny_data, 42)
    assert len(split.validation) == 1
    report = evaluate_generator(generators["conv"], labeler, tiny_data, split, seeds_per_pair=2)
    assert report["frechet_distance"] is None and report["knn_precision"] is None and report["knn_recall"] is None
    assert report["density"] is None and report["coverage"] is None and report["real_floor_frechet_distance"] is None
    assert report["sharpness_ratio"] > 0 and report["lattice_ratio"] > 0  # one image is enough for these
    assert np.isfinite(report["val_loss"]) and 0 <= report["rounded_accuracy"] <= 1
    assert 0 <= report["conditional_subCategory_accuracy"] <= 1


@pytest.mark.parametrize("arch", ["paper", "conv"])
def test_evaluation_of_a_larger_validation_part(generators, labeler, tiny_data, arch: str) -> None:
    split = Split(train=np.arange(5), validation=np.arange(5, 11), kind="random", seed=0)
    generator = generators[arch]
    report = evaluate_generator(generator, labeler, tiny_data, split, seeds_per_pair=2)
    val_images = tiny_data.images[split.validation]
    real = penultimate_features(labeler, val_images)
    fake = penultimate_features(labeler, generator.decode(generator.codes(0, 6),
                                                                  SCHEMA.encode_frame(tiny_data.styles.iloc[5:])))
    assert report["frechet_distance"] == pytest.approx(frechet_distance(real, fake))
    assert report["knn_precision"] == knn_precision_recall(real, fake)["precision"]
    train_pairs = set(zip(tiny_data.styles["subCategory"][:5], tiny_data.styles["gender"][:5]))
    assert report["conditional_pairs"] == len(train_pairs)
    conditions = labeler.scores(val_images) if arch == "paper" else SCHEMA.encode_frame(tiny_data.styles.iloc[5:])
    assert report["mse"] == pytest.approx(reconstruction_metrics(generator, val_images, conditions)["mse"])


def test_evaluation_refuses_a_classifier_with_another_schema(generators, tiny_data) -> None:
    other = LabelSchema(SCHEMA.sub_categories[::-1], SCHEMA.genders)
    labeler = Labeler(keras.Sequential([keras.Input((80, 60, 3)), keras.layers.Flatten(),
                                        keras.layers.Dense(other.size)]), other)
    with pytest.raises(ValueError, match="different label schemas"):
        evaluate_generator(generators["conv"], labeler, tiny_data, make_split("random", tiny_data))


def test_evaluation_with_a_catalog_labeler_and_a_colour_generator(colour_generator, tiny_data) -> None:
    """The catalog labeler (more heads) judges the colour generator by head names; the generator is
    conditioned on each validation row's colour; the floor is the training photos floor_rows draws."""
    split = Split(train=np.arange(5), validation=np.arange(5, 11), kind="random", seed=0)
    labeler = threshold_labeler(tiny_data.images, CATALOG_SCHEMA)
    report = evaluate_generator(colour_generator, labeler, tiny_data, split, seeds_per_pair=2)
    styles = tiny_data.styles.iloc[split.validation]
    truth = COLOUR_SCHEMA.encode_frame(styles)
    assert truth[:, COLOUR_SCHEMA.slices["baseColour"]].sum() == len(styles)  # every tiny photo is Blue
    real = penultimate_features(labeler, tiny_data.images[split.validation])
    fake = penultimate_features(labeler, colour_generator.decode(colour_generator.latents(truth, 0), truth))
    assert report["frechet_distance"] == pytest.approx(frechet_distance(real, fake))
    assert {key: report[key] for key in ("density", "coverage")} == density_coverage(real, fake)
    assert 0 <= report["conditional_baseColour_accuracy"] <= 1
    pairs = sorted(set(zip(tiny_data.styles["subCategory"][:5], tiny_data.styles["gender"][:5])))
    expected = real_conditional_accuracy(CATALOG_SCHEMA, labeler.scores(tiny_data.images[split.validation]),
                                         styles, pairs, colour=True)
    assert report["real_validation_conditional_accuracy"] == expected
    assert expected["baseColour_accuracy"] is not None
    same = accuracy_on_real_pairs(report["conditional_per_pair"], styles, CATALOG_SCHEMA.heads["baseColour"])
    for key in ("subCategory_accuracy", "baseColour_accuracy"):
        assert report[f"conditional_{key}_real_pairs"] == same[key]
    assert report["conditional_real_pairs"] == expected["pairs"]
    rows, _ = floor_rows(tiny_data.styles.iloc[split.train], styles, seed=0)
    floor = penultimate_features(labeler, tiny_data.images[split.train[rows]])
    assert report["real_floor_frechet_distance"] == pytest.approx(frechet_distance(real, floor))
    assert report["real_floor_knn_precision"] == knn_precision_recall(real, floor)["precision"]
    floor_images = tiny_data.images[split.train[rows]]
    validation = real_validation(labeler, tiny_data, split)
    assert validation.floor["sharpness_ratio"] == pytest.approx(
        sharpness_ratio(laplacian_energy(floor_images), laplacian_energy(tiny_data.images[split.validation])))


def test_generated_accuracy_is_also_averaged_over_only_the_pairs_real_photos_have() -> None:
    """Real photos are scored on the pairs the validation part has; generation on every training
    pair, rare ones too, where it errs most. The like-for-like number leaves the others out (the
    default generator: sub-category 0.890 over 68 pairs, 0.942 over the 58 real photos have)."""
    per_pair = [{"subCategory": "Topwear", "gender": "Men", "subCategory_accuracy": 1.0, "gender_accuracy": 0.5,
                 "baseColour_accuracy": 0.25},
                {"subCategory": "Bags", "gender": "Women", "subCategory_accuracy": 0.5, "gender_accuracy": 1.0,
                 "baseColour_accuracy": 0.75},
                {"subCategory": "Shoes", "gender": "Girls", "subCategory_accuracy": 0.0, "gender_accuracy": 0.0,
                 "baseColour_accuracy": 0.0}]
    styles = pd.DataFrame({"subCategory": ["Topwear", "Bags", "Bags"], "gender": ["Men", "Women", "Women"],
                           "baseColour": ["Blue", "Beige", "Olive"]})  # no Shoes-Girls; the bags' colours unknown
    assert accuracy_on_real_pairs(per_pair, styles, COLOURS) == {
        "subCategory_accuracy": 0.75, "gender_accuracy": 0.75, "baseColour_accuracy": 0.25, "pairs": 2}
    assert accuracy_on_real_pairs(per_pair, styles)["baseColour_accuracy"] is None
    assert accuracy_on_real_pairs(per_pair, styles.iloc[:0])["subCategory_accuracy"] is None


def test_a_paper_generator_takes_the_catalog_labelers_paper_scores(generators, tiny_data) -> None:
    split = Split(train=np.arange(5), validation=np.arange(5, 11), kind="random", seed=0)
    labeler = threshold_labeler(tiny_data.images, CATALOG_SCHEMA)
    report = evaluate_generator(generators["paper"], labeler, tiny_data, split, seeds_per_pair=2)
    images = tiny_data.images[split.validation]
    paper_scores = labeler.scores(images)[:, : SCHEMA.size]
    assert report["mse"] == pytest.approx(reconstruction_metrics(generators["paper"], images, paper_scores)["mse"])
    assert report["conditional_baseColour_accuracy"] is None
    assert report["real_validation_conditional_accuracy"]["baseColour_accuracy"] is None
