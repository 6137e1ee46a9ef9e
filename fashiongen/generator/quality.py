"""How good a generator is: reconstruction (the paper's loss, rounded accuracy, MSE, SSIM),
conditional accuracy judged by the classifier, and Fréchet distance / k-NN precision-recall on the
classifier's penultimate features (Inception weights cannot be downloaded here)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable

import keras
import numpy as np

from fashiongen.batches import to_unit_float
from fashiongen.generator.architectures import PIXEL_VALUES
from fashiongen.generator.generator import Generator
from fashiongen.labeler.labeler import Labeler

BCE_EPSILON = 1e-7  # Keras's clipping in binary cross-entropy
KNN_K = 3  # neighbours for k-NN precision/recall, as in Kynkäänniemi et al.


def reconstruction_metrics(generator: Generator, images: np.ndarray, conditions: np.ndarray, seed: int = 0,
                           batch_size: int = 256) -> dict[str, float]:
    """The paper's loss (reconstruction BCE + KL / 14400, with a sampled code, as its Keras model
    evaluates) and rounded accuracy; MSE and SSIM of the deterministic reconstruction (code = mean)."""
    import tensorflow as tf  # SSIM: tf.image.ssim, the backend's own

    rng = np.random.default_rng(seed)
    totals = {"reconstruction_loss": 0.0, "latent_loss": 0.0, "rounded_accuracy": 0.0, "mse": 0.0, "ssim": 0.0}
    for start in range(0, len(images), batch_size):
        x = to_unit_float(images[start : start + batch_size])
        c = np.asarray(conditions[start : start + batch_size], np.float32)
        mean, log_var = (np.asarray(t, np.float64) for t in
                         generator.encoder.predict_on_batch(x if generator.arch == "paper" else [x, c]))
        code = mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)
        sampled = np.asarray(generator.decoder.predict_on_batch([code.astype(np.float32), c]), np.float64)
        clipped = np.clip(sampled, BCE_EPSILON, 1 - BCE_EPSILON)
        bce = -(x * np.log(clipped) + (1 - x) * np.log(1 - clipped))
        kl = -0.5 * np.sum(1 + log_var - np.exp(log_var) - mean**2, axis=1)
        deterministic = np.asarray(generator.decoder.predict_on_batch([mean.astype(np.float32), c]), np.float32)
        n = len(x)
        totals["reconstruction_loss"] += bce.mean() * n
        totals["latent_loss"] += kl.mean() / PIXEL_VALUES * n
        totals["rounded_accuracy"] += np.mean(np.round(x) == np.round(sampled)) * n
        totals["mse"] += np.mean((x - deterministic) ** 2) * n
        totals["ssim"] += float(tf.reduce_sum(tf.image.ssim(x, deterministic, max_val=1.0)))
    result = {key: float(value / len(images)) for key, value in totals.items()}
    result["val_loss"] = result["reconstruction_loss"] + result["latent_loss"]
    return result


def penultimate_features(labeler: Labeler, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The classifier's pooled features (the layer named "features") for uint8 images."""
    extractor = keras.Model(labeler.model.input, labeler.model.get_layer("features").output)
    return np.concatenate([np.asarray(extractor.predict_on_batch(to_unit_float(images[i : i + batch_size])))
                           for i in range(0, len(images), batch_size)]).astype(np.float64)


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """||mu_r - mu_f||^2 + Tr(C_r + C_f - 2 (C_r C_f)^1/2) between two feature sets (as FID).
    Each set needs at least 2 rows (a covariance): fewer raise `ValueError`."""
    from scipy import linalg

    real, fake = _feature_sets(real, fake, min_rows=2, purpose="a Fréchet distance (covariances)")
    mu_r, mu_f = real.mean(axis=0), fake.mean(axis=0)
    cov_r, cov_f = (np.atleast_2d(np.cov(x, rowvar=False)) for x in (real, fake))  # 1 feature: a 1x1 matrix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # checked below instead
        root = linalg.sqrtm(cov_r @ cov_f)
        if not np.isfinite(root).all():  # near-singular product: regularise, as the FID reference code does
            offset = np.eye(len(cov_r)) * 1e-6
            root = linalg.sqrtm((cov_r + offset) @ (cov_f + offset))
    return float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r + cov_f - 2 * np.real(root)))


def knn_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = KNN_K) -> dict[str, float]:
    """Kynkäänniemi et al. (2019): precision = share of fakes inside some real sample's k-NN ball,
    recall = share of reals inside some fake sample's k-NN ball. Each set needs more than k rows."""
    from sklearn.metrics import pairwise_distances

    real, fake = _feature_sets(real, fake, min_rows=k + 1, purpose=f"k-NN precision/recall with k={k}")

    def radii(points: np.ndarray) -> np.ndarray:
        distances = pairwise_distances(points)
        return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself

    real_radii, fake_radii = radii(real), radii(fake)
    cross = pairwise_distances(fake, real)  # fake x real
    precision = float(np.mean((cross <= real_radii[None, :]).any(axis=1)))
    recall = float(np.mean((cross.T <= fake_radii[None, :]).any(axis=1)))
    return {"precision": precision, "recall": recall}


def _feature_sets(real: np.ndarray, fake: np.ndarray, min_rows: int, purpose: str) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as float64 (N, D) arrays with the same D and at least `min_rows` finite rows.
    (NaN covariances from a single row sent scipy's sqrtm into an endless loop.)"""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"{purpose} needs two (N, D) feature sets of the same D, got {real.shape} and {fake.shape}")
    if min(len(real), len(fake)) < min_rows:
        raise ValueError(f"{purpose} needs at least {min_rows} rows in each set, got {len(real)} and {len(fake)}")
    if not (np.isfinite(real).all() and np.isfinite(fake).all()):
        raise ValueError(f"{purpose} needs finite features")
    return real, fake


def conditional_accuracy(generator: Generator, labeler: Labeler, pairs: Iterable[tuple[str, str]],
                         seeds: int = 16) -> dict:
    """For each (sub-category, gender) pair, `seeds` images from seeds 0..seeds-1; the share the
    classifier labels with the requested sub-category, and with the requested gender."""
    per_pair = []
    sub_hits = gender_hits = total = 0
    for sub_category, gender in pairs:
        condition = generator.condition(sub_category, gender)
        codes = np.concatenate([generator.latents(condition, seed) for seed in range(seeds)])  # = generate(.., seed, 1)
        images = generator.decode(codes, np.repeat(condition[None], seeds, axis=0))
        predictions = labeler.predict(images)
        sub_ok = sum(p.top_sub_category[0] == sub_category for p in predictions)
        gender_ok = sum(p.top_gender[0] == gender for p in predictions)
        per_pair.append({"subCategory": sub_category, "gender": gender, "n": seeds,
                         "subCategory_accuracy": sub_ok / seeds, "gender_accuracy": gender_ok / seeds})
        sub_hits, gender_hits, total = sub_hits + sub_ok, gender_hits + gender_ok, total + seeds
    if not total:  # no pairs asked for
        return {"subCategory_accuracy": None, "gender_accuracy": None, "n_images": 0, "per_pair": []}
    return {"subCategory_accuracy": sub_hits / total, "gender_accuracy": gender_hits / total, "n_images": total,
            "per_pair": per_pair}


def real_conditional_accuracy(schema, scores: np.ndarray, styles, pairs: Iterable[tuple[str, str]]) -> dict:
    """The reference for conditional accuracy: the same per-pair measure on real photos. For each
    pair with at least one photo (rows of `styles`, classifier `scores` in the same order), the share
    the classifier labels with the pair's sub-category, and gender; averaged over those pairs with
    equal weight, as conditional_accuracy weighs every pair alike. Rare pairs are where the classifier
    errs most, so this is far below its accuracy over all images."""
    sub_scores_of, gender_scores_of = schema.split_scores(np.asarray(scores).reshape(-1, schema.size))
    predicted_sub = np.asarray(schema.sub_categories, dtype=object)[sub_scores_of.argmax(axis=1)]
    predicted_gender = np.asarray(schema.genders, dtype=object)[gender_scores_of.argmax(axis=1)]
    sub_categories = styles["subCategory"].to_numpy()
    genders = styles["gender"].to_numpy()
    sub_scores, gender_scores = [], []
    for sub_category, gender in pairs:
        rows = np.flatnonzero((sub_categories == sub_category) & (genders == gender))
        if len(rows):
            sub_scores.append(float(np.mean(predicted_sub[rows] == sub_category)))
            gender_scores.append(float(np.mean(predicted_gender[rows] == gender)))
    if not sub_scores:
        return {"subCategory_accuracy": None, "gender_accuracy": None, "pairs": 0}
    return {"subCategory_accuracy": float(np.mean(sub_scores)), "gender_accuracy": float(np.mean(gender_scores)),
            "pairs": len(sub_scores)}


@dataclass(frozen=True)
class RealValidation:
    """The real validation photos and what the classifier makes of them, computed once and shared by
    every generator an evaluation compares."""

    images: np.ndarray  # uint8
    styles: object  # their styles.csv rows
    truth: np.ndarray  # one-hot labels
    scores: np.ndarray  # the classifier's scores
    features: np.ndarray  # its penultimate features


def real_validation(labeler: Labeler, dataset, split) -> RealValidation:
    images = dataset.images[split.validation]
    styles = dataset.styles.iloc[split.validation]
    return RealValidation(images, styles, labeler.schema.encode_frame(styles), labeler.scores(images),
                          penultimate_features(labeler, images))


def evaluate_generator(generator: Generator, labeler: Labeler, dataset, split, seeds_per_pair: int = 16,
                       seed: int = 0, min_class_images: int = 50, real: RealValidation | None = None) -> dict:
    """Every quality number for one generator on the validation part of `split` of `dataset`
    (a `FashionData`): reconstruction, conditional accuracy over the (sub-category, gender) pairs
    present in the training part, and Fréchet distance / k-NN precision-recall between one generated
    image per validation row (its labels, a random code) and the real validation images. The
    distance is None with fewer than 2 validation images, k-NN precision/recall with KNN_K or fewer.
    `real`: real_validation(labeler, dataset, split), when several generators are compared."""
    schema = labeler.schema
    if schema != generator.schema:
        raise ValueError("the generator and the classifier use different label schemas")
    real = real or real_validation(labeler, dataset, split)
    conditions = real.scores if generator.arch == "paper" else real.truth
    result = reconstruction_metrics(generator, real.images, conditions, seed=seed)
    result.update(_conditional_results(generator, labeler, real, _training_pairs(dataset, split, schema),
                                       seeds_per_pair))
    # one generated image per validation row, conditioned on that row's labels
    generated = generator.decode(generator.latents(real.truth, seed), real.truth)
    fake_features = penultimate_features(labeler, generated)
    result.update(_distances(real.features, fake_features))
    val_sub = dataset.styles["subCategory"].to_numpy()[split.validation]
    result["frechet_distance_per_subCategory"] = _distances_per_class(real.features, fake_features, val_sub,
                                                                      schema.sub_categories, min_class_images)
    return result


def _training_pairs(dataset, split, schema) -> list[tuple[str, str]]:
    """The (sub-category, gender) pairs of the training part that the schema knows, sorted."""
    train_styles = dataset.styles.iloc[split.train]
    in_schema = train_styles[train_styles["subCategory"].isin(schema.sub_categories)]
    return sorted(set(zip(in_schema["subCategory"], in_schema["gender"])))


def _conditional_results(generator: Generator, labeler: Labeler, real: RealValidation, pairs, seeds: int) -> dict:
    conditional = conditional_accuracy(generator, labeler, pairs, seeds=seeds)
    return {
        "conditional_subCategory_accuracy": conditional["subCategory_accuracy"],
        "conditional_gender_accuracy": conditional["gender_accuracy"],
        "conditional_pairs": len(pairs),
        "conditional_per_pair": conditional["per_pair"],
        # what real validation photos of the same pairs score: the ceiling an honest generator can expect
        "real_validation_conditional_accuracy": real_conditional_accuracy(labeler.schema, real.scores, real.styles,
                                                                          pairs),
    }


def _distances(real_features: np.ndarray, fake_features: np.ndarray) -> dict:
    """Fréchet distance and k-NN precision/recall; too few images for a covariance / a k-NN ball:
    None (reported as n/a), not NaN."""
    n_val = len(real_features)
    result = {"frechet_distance": frechet_distance(real_features, fake_features) if n_val >= 2 else None}
    knn = knn_precision_recall(real_features, fake_features, k=KNN_K) if n_val > KNN_K else {}
    return result | {f"knn_{name}": knn.get(name) for name in ("precision", "recall")}


def _distances_per_class(real_features: np.ndarray, fake_features: np.ndarray, sub_categories: np.ndarray,
                         names, min_class_images: int) -> dict:
    per_class = {}
    for name in names:
        rows = np.flatnonzero(sub_categories == name)
        if len(rows) >= max(2, min_class_images):  # the distance is biased upwards on small samples
            per_class[name] = {"n": int(len(rows)),
                               "frechet_distance": frechet_distance(real_features[rows], fake_features[rows])}
    return per_class
