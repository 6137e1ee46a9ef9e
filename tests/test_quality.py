"""Generator quality numbers: Fréchet distance and k-NN precision/recall against hand-computed
cases, reconstruction metrics against the CVAE's own loss, conditional accuracy against labeling
the generated images directly, and the whole evaluation on the tiny dataset."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_tiny_dataset
from helpers import SCHEMA, fixed_batch, force_mean_codes, fresh_test_step

from fashiongen.dataset import FashionData, load_dataset
from fashiongen.generator.cvae import CVAE, build_generator
from fashiongen.generator.generator import Generator
from fashiongen.generator.quality import (
    conditional_accuracy,
    evaluate_generator,
    frechet_distance,
    knn_precision_recall,
    penultimate_features,
    reconstruction_metrics,
)
from fashiongen.labeler.labeler import Labeler
from fashiongen.schema import LabelSchema
from fashiongen.splits import Split, make_split

PAIRS = [("Topwear", "Men"), ("Bags", "Women"), ("Shoes", "Girls")]
SEEDS = 6


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


def threshold_labeler(reference: np.ndarray) -> Labeler:
    """A classifier whose answers depend on the image: Topwear when an image is redder than the
    median of `reference`, else Bags; Men when greener, else Women. Its "features" are the three
    channel means. (A freshly built CNN answers the same for every generated image.)"""
    means = reference.astype(np.float64).mean(axis=(1, 2)) / 255.0
    red, green = np.median(means[:, 0]), np.median(means[:, 1])
    image = keras.Input((80, 60, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D(name="features")(image)
    scores = keras.layers.Dense(SCHEMA.size, activation="sigmoid", name="scores")(features)
    model = keras.Model(image, scores)
    kernel, bias, steep = np.zeros((3, SCHEMA.size), np.float32), np.full(SCHEMA.size, -50.0, np.float32), 1e5
    men, women = len(SCHEMA.sub_categories) + SCHEMA.genders.index("Men"), len(SCHEMA.sub_categories) + 1
    for unit, channel, sign, threshold in [(SCHEMA.sub_categories.index("Topwear"), 0, 1, red),
                                           (SCHEMA.sub_categories.index("Bags"), 0, -1, red),
                                           (men, 1, 1, green), (women, 1, -1, green)]:
        kernel[channel, unit], bias[unit] = sign * steep, -sign * steep * threshold
    model.get_layer("scores").set_weights([kernel, bias])
    return Labeler(model, SCHEMA)


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
