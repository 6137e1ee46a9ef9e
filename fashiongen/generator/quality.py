"""How good a generator is: reconstruction (the paper's loss, rounded accuracy, MSE, SSIM),
conditional accuracy judged by the classifier, Fréchet distance, k-NN precision/recall and
density/coverage on the classifier's penultimate features (Inception weights cannot be downloaded
here), and four image statistics against real photos: sharpness (high-frequency energy), a
lattice (checkerboard) detector, a periodic-texture detector and a per-sub-category pattern
detector (periods of 4-16 pixels). Each is also measured on the
"floor": real training photos with the validation rows' labels, what a perfect generator would
score."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter

from fashiongen.batches import to_unit_float
from fashiongen.generator.architectures import PIXEL_VALUES
from fashiongen.generator.generator import COLOUR, Generator
from fashiongen.generator.spectral import PATTERN_BAND, frequencies
from fashiongen.labeler.labeler import Labeler
from fashiongen.schema import MISSING_VALUES, LabelSchema

BCE_EPSILON = 1e-7  # Keras's clipping in binary cross-entropy
KNN_K = 3  # neighbours for k-NN precision/recall and density/coverage, as in Kynkäänniemi et al., Naeem et al.
BATCH = 256  # images per decoder / labeler / FFT call: bounds memory on the 2,070 validation photos
# the floor's match levels, tightest first: a validation row takes a training photo of the first level
# that has one (the colour level only when the row has a colour)
FLOOR_LEVELS = (("subCategory", "gender", COLOUR), ("subCategory", "gender"), ("subCategory",), ())
MIN_CLASS_IMAGES = 50  # a sub-category's fewest validation photos for a per-class number: smaller ones are noise


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
    metrics = manifold_metrics(real, fake, k)
    return {"precision": metrics["precision"], "recall": metrics["recall"]}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = KNN_K) -> dict[str, float]:
    """Naeem et al. (2020): density = how many real k-NN balls hold each fake, on average, over k
    (about 1 when fakes are distributed like reals; above 1 when they crowd where reals are dense);
    coverage = share of real balls holding at least one fake. Unlike recall, neither is inflated
    by a few outlying fakes with huge balls. Strictly inside a ball, as the authors' `prdc` code."""
    metrics = manifold_metrics(real, fake, k)
    return {"density": metrics["density"], "coverage": metrics["coverage"]}


def manifold_metrics(real: np.ndarray, fake: np.ndarray, k: int = KNN_K) -> dict[str, float]:
    """k-NN precision/recall and density/coverage from one set of pairwise distances."""
    from sklearn.metrics import pairwise_distances

    real, fake = _feature_sets(real, fake, min_rows=k + 1, purpose=f"k-NN metrics with k={k}")
    real_radii, fake_radii = _knn_radii(real, k), _knn_radii(fake, k)
    cross = pairwise_distances(fake, real)  # fake x real
    inside = cross < real_radii[None, :]  # fake j strictly inside real i's ball
    return {"precision": float(np.mean((cross <= real_radii[None, :]).any(axis=1))),
            "recall": float(np.mean((cross.T <= fake_radii[None, :]).any(axis=1))),
            "density": float(inside.sum() / (k * len(fake))),
            "coverage": float(np.mean(inside.any(axis=0)))}


def _knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest other point."""
    from sklearn.metrics import pairwise_distances

    return np.partition(pairwise_distances(points), k, axis=1)[:, k]  # column 0 is the point itself


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


def laplacian_energy(images: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """Each image's mean squared 4-neighbour Laplacian (4 x[i, j] minus its four neighbours), per
    RGB channel on [0, 1] values, over the interior pixels: its high-frequency energy. (N,) float64."""
    energies = []
    for start in range(0, len(images), batch_size):
        x = np.asarray(images[start : start + batch_size], np.float32) / 255.0
        laplacian = (4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:])
        energies.append(np.mean(np.square(laplacian, dtype=np.float64), axis=(1, 2, 3)))
    return np.concatenate(energies) if energies else np.zeros(0)


def lattice_energy(images: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """A checkerboard detector: each image's spectral power (power_spectra) at the Nyquist
    frequencies (pi, pi), (pi, 0) and (0, pi), i.e. period-2 patterns in both directions, in y and
    in x (each with its 3x3 bins, as the window spreads a pure tone over them), and in the ring of
    bins 2 to 4 away from them. (N, 2) float64: peak, ring. A lattice such as transposed
    convolutions paint is a peak at these frequencies; real detail and noise spread their energy
    over the ring alike."""
    return spectral_statistics(images, batch_size)[0]


def mean_power_spectrum(images: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """The set's mean spectral power per FFT bin (power_spectra), (height, width) float64."""
    return spectral_statistics(images, batch_size)[1]


def spectral_statistics(images: np.ndarray, batch_size: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """(lattice_energy, mean_power_spectrum) of `images` from one pass of FFTs."""
    height, width = np.shape(images)[1:3]
    near = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)]
    peaks, rings = [], []
    for centre_y, centre_x in ((height // 2, width // 2), (height // 2, 0), (0, width // 2)):
        for dy, dx in near:
            bin_ = ((centre_y + dy) % height, (centre_x + dx) % width)
            (peaks if max(abs(dy), abs(dx)) <= 1 else rings).append(bin_)
    peak_bins, ring_bins = tuple(np.array(peaks).T), tuple(np.array(rings).T)
    energies, total = [], np.zeros((height, width))
    for power in power_spectra(images, batch_size):
        energies.append(np.stack([power[:, peak_bins[0], peak_bins[1]].mean(axis=1),
                                  power[:, ring_bins[0], ring_bins[1]].mean(axis=1)], axis=1))
        total += power.sum(axis=0)
    return (np.concatenate(energies) if energies else np.zeros((0, 2))), total / max(len(images), 1)


def power_spectra(images: np.ndarray, batch_size: int = BATCH) -> Iterable[np.ndarray]:
    """Batch by batch, each uint8 image's spectral power per FFT bin: Hann-windowed, each RGB
    channel's mean removed, channels summed; (n, height, width) float64."""
    height, width = np.shape(images)[1:3]
    window = np.outer(np.hanning(height), np.hanning(width))[None, :, :, None]
    for start in range(0, len(images), batch_size):
        x = np.asarray(images[start : start + batch_size], np.float64) / 255.0
        x = (x - x.mean(axis=(1, 2), keepdims=True)) * window
        yield np.square(np.abs(np.fft.fft2(x, axes=(1, 2)))).sum(axis=3)


def texture_ratio(fake_spectrum: np.ndarray, real_spectrum: np.ndarray, neighbourhood: int = 5) -> float | None:
    """The worst high-frequency patch of the spectrum: the largest ratio of the fakes' mean power
    (mean_power_spectrum) to the reals', each summed over `neighbourhood` x `neighbourhood` bins,
    over the bins beyond half the Nyquist frequency in y or x (periods under 4 pixels). About 1 for
    real photos, below 1 blurred, well above 1 for a periodic texture anywhere in that band, which
    lattice_ratio misses when it lies off the Nyquist bins (it counts such energy in its ring, and
    reads it as *less* lattice). Summed, as single bins swing with a few busy photos
    (docs/experiments/2026-12-02-conv-decoder-gan.md). None for an empty spectrum."""
    fake = uniform_filter(np.asarray(fake_spectrum, np.float64), neighbourhood, mode="wrap")
    real = uniform_filter(np.asarray(real_spectrum, np.float64), neighbourhood, mode="wrap")
    band = (frequencies(np.shape(real_spectrum)) >= 0.5) & (real > 0)
    if not band.any() or not np.any(fake):
        return None
    return float(np.max(fake[band] / real[band]))


def log_power_spectra(images: np.ndarray, classes: np.ndarray, min_images: int = MIN_CLASS_IMAGES,
                      neighbourhood: int = 3, batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """For each class of `classes` (one per image) with at least `min_images` images, the mean over
    its images of the log spectral power (power_spectra) summed over `neighbourhood` x
    `neighbourhood` bins: (height, width) float64. The log mean, not the mean: a pattern a decoder
    paints on every image of a class shows in it, while a few busy photos, which dominate the mean
    power at these frequencies, do not."""
    classes = np.asarray(classes)
    names, counts = np.unique(classes, return_counts=True)
    counts = {name: count for name, count in zip(names, counts) if count >= min_images}
    sums = dict.fromkeys(counts, 0.0)
    for start, power in zip(range(0, len(images), batch_size), power_spectra(images, batch_size)):
        logs = np.log(uniform_filter(power, (1, neighbourhood, neighbourhood), mode="wrap") + 1e-12)
        batch_classes = classes[start : start + batch_size]
        for name in sums:
            sums[name] = sums[name] + logs[batch_classes == name].sum(axis=0)
    return {name: sums[name] / counts[name] for name in sums}


def pattern_ratio(fake: dict[str, np.ndarray], real: dict[str, np.ndarray],
                  band: tuple[float, float] = PATTERN_BAND) -> tuple[float | None, str | None]:
    """The worst class's excess of mid-frequency power (periods of 4-16 pixels) over real photos of
    the same class: the largest exp(fake - real) of log_power_spectra over the band's bins and the
    classes both have, and that class. A plaid or a stripe a decoder paints on one kind of product
    (2026-12-04: 6-8 pixel squares on every watch) is a peak here; texture_ratio misses it
    (periods under 4 pixels, mean power over all products). A second sample of real photos scores
    1.1-1.6 on one class of 50-700 photos, so compare with the floor's number. (None, None) with
    no class in common."""
    ratios = pattern_ratios(fake, real, band)
    if not ratios:
        return None, None
    worst = max(ratios, key=ratios.get)
    return ratios[worst], worst


def pattern_ratios(fake: dict[str, np.ndarray], real: dict[str, np.ndarray],
                   band: tuple[float, float] = PATTERN_BAND) -> dict[str, float]:
    """pattern_ratio for every class both have: {class: exp of the largest (fake - real) of
    log_power_spectra over the band's bins}; empty with no class in common."""
    classes = [name for name in fake if name in real]
    if not classes:
        return {}
    distance = frequencies(np.shape(real[classes[0]]))
    inside = (distance >= band[0]) & (distance <= band[1])
    return {name: float(np.exp(np.max((fake[name] - real[name])[inside]))) for name in classes}


def sharpness_ratio(fake_energy: np.ndarray, real_energy: np.ndarray) -> float | None:
    """Mean high-frequency energy (laplacian_energy) of the fakes over that of the reals they are
    compared with: 1 as sharp as real photos, below 1 blurred, well above 1 noise. None without energy."""
    return _ratio(np.mean(fake_energy) if len(fake_energy) else 0.0, np.mean(real_energy) if len(real_energy) else 0.0)


def lattice_ratio(fake_energy: np.ndarray, real_energy: np.ndarray) -> float | None:
    """How much more the fakes' spectrum peaks at the Nyquist frequencies than the reals' does: the
    geometric mean over images of peak / ring (lattice_energy) for the fakes over that for the reals.
    About 1 for real photos, well above 1 with a checkerboard. (The geometric mean: a few busy photos
    would sway a ratio of sums by 10-25% between two samples of real photos, this by 1-3%.)
    None for an empty set."""
    fake_energy, real_energy = np.reshape(fake_energy, (-1, 2)), np.reshape(real_energy, (-1, 2))
    if not (len(fake_energy) and len(real_energy)):
        return None

    def mean_log_peak(energy: np.ndarray) -> float:
        tiny = 1e-12  # a flat image (no power at all) counts as peak = ring
        return float(np.mean(np.log((energy[:, 0] + tiny) / (energy[:, 1] + tiny))))

    return float(np.exp(mean_log_peak(fake_energy) - mean_log_peak(real_energy)))


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def judged_heads(generator: Generator, labeler: Labeler) -> tuple[str, ...]:
    """The generator's heads the labeler judges, by name: sub-category and gender always, the colour
    when the generator has colour control and the labeler a colour head. A head the labeler names
    with other classes raises `ValueError`: its answers could not be compared with the condition.
    The colour head may list the same classes in another order (each split's training rows order
    them by their own counts): answers are compared by class name. The paper's two heads may not,
    since the paper's generator is conditioned on the labeler's scores column by column."""
    heads = []
    for column, classes in generator.schema.heads.items():
        theirs = labeler.schema.heads.get(column)
        if theirs is None and column in ("subCategory", "gender"):
            raise ValueError(f"the classifier has no {column} head; the generator needs one")
        reordered = theirs is not None and column not in ("subCategory", "gender") and sorted(theirs) == sorted(classes)
        if theirs is not None and theirs != classes and not reordered:
            raise ValueError(f"the generator and the classifier use different label schemas: their {column} "
                             "classes differ; use a classifier with the generator's classes")
        if theirs is not None:
            heads.append(column)
    return tuple(heads)


def conditional_accuracy(generator: Generator, labeler: Labeler, pairs: Iterable[tuple[str, str]],
                         seeds: int = 16) -> dict:
    """For each (sub-category, gender) pair, `seeds` images from seeds 0..seeds-1 (what generate()
    draws for each seed, its colour too); the share the classifier labels with the requested
    sub-category, gender and, with colour control and a labeler colour head, the colour of the
    image's condition row ("any colour" draws judged against the drawn colour; None otherwise)."""
    heads = judged_heads(generator, labeler)
    per_pair, hits, total = [], dict.fromkeys(heads, 0), 0
    for sub_category, gender in pairs:
        conditions = np.concatenate([generator.conditions(sub_category, gender, seed, 1) for seed in range(seeds)])
        codes = np.concatenate([generator.latents(conditions[seed], seed) for seed in range(seeds)])
        predicted = _predicted_classes(labeler.schema, labeler.scores(generator.decode(codes, conditions)), heads)
        wanted = _predicted_classes(generator.schema, conditions, heads)  # one-hot rows: argmax is the class
        entry = {"subCategory": sub_category, "gender": gender, "n": seeds}
        for column in heads:
            ok = int(np.sum(predicted[column] == wanted[column]))
            entry[f"{column}_accuracy"] = ok / seeds
            hits[column] += ok
        per_pair.append(entry)
        total += seeds
    result = {f"{column}_accuracy": (hits[column] / total if total and column in hits else None)
              for column in ("subCategory", "gender", COLOUR)}
    return result | {"n_images": total, "per_pair": per_pair}


def _predicted_classes(schema: LabelSchema, scores: np.ndarray, heads: Iterable[str]) -> dict[str, np.ndarray]:
    """Each head's most probable class name per row of `scores` (in `schema`'s columns)."""
    return {column: np.asarray(schema.heads[column], dtype=object)[scores[:, schema.slices[column]].argmax(axis=1)]
            for column in heads}


def real_conditional_accuracy(schema: LabelSchema, scores: np.ndarray, styles: pd.DataFrame,
                              pairs: Iterable[tuple[str, str]], colour: bool = False) -> dict:
    """The reference for conditional accuracy: the same per-pair measure on real photos. For each
    pair with at least one photo (rows of `styles`, classifier `scores` in the same order), the share
    the classifier labels with the pair's sub-category, and gender; averaged over those pairs with
    equal weight, as conditional_accuracy weighs every pair alike. Rare pairs are where the classifier
    errs most, so this is far below its accuracy over all images. `colour` (needs a colour head in
    `schema`): also the share labelled with the photo's own styles.csv colour, over the pair's photos
    whose colour the head knows, averaged over the pairs that have such photos (else None)."""
    scores = np.asarray(scores).reshape(-1, schema.size)
    heads = ("subCategory", "gender", COLOUR) if colour else ("subCategory", "gender")
    predicted = _predicted_classes(schema, scores, heads)
    sub_categories, genders = styles["subCategory"].to_numpy(), styles["gender"].to_numpy()
    known_colour = styles[COLOUR].isin(schema.heads[COLOUR]).to_numpy() if colour else None
    accuracies: dict[str, list[float]] = {column: [] for column in heads}
    for sub_category, gender in pairs:
        rows = np.flatnonzero((sub_categories == sub_category) & (genders == gender))
        if not len(rows):
            continue
        accuracies["subCategory"].append(float(np.mean(predicted["subCategory"][rows] == sub_category)))
        accuracies["gender"].append(float(np.mean(predicted["gender"][rows] == gender)))
        coloured = rows[known_colour[rows]] if colour else rows[:0]
        if len(coloured):
            truth = styles[COLOUR].to_numpy()[coloured]
            accuracies[COLOUR].append(float(np.mean(predicted[COLOUR][coloured] == truth)))
    result = {f"{column}_accuracy": float(np.mean(accuracies[column])) if accuracies.get(column) else None
              for column in ("subCategory", "gender", COLOUR)}
    return result | {"pairs": len(accuracies["subCategory"])}


@dataclass(frozen=True)
class RealValidation:
    """The real validation photos and what the classifier makes of them, computed once and shared by
    every generator an evaluation compares, with their image statistics and the floor."""

    images: np.ndarray  # uint8
    styles: pd.DataFrame  # their styles.csv rows
    truth: np.ndarray  # one-hot labels in the classifier's schema
    scores: np.ndarray  # the classifier's scores
    features: np.ndarray  # its penultimate features
    sharpness: np.ndarray  # laplacian_energy per photo
    lattice: np.ndarray  # lattice_energy per photo
    spectrum: np.ndarray  # mean_power_spectrum of the photos
    class_spectra: dict  # log_power_spectra per sub-category
    floor: dict = field(default_factory=dict)  # real_floor's numbers: the floor's rows and their metrics


def real_validation(labeler: Labeler, dataset, split, floor_seed: int = 0) -> RealValidation:
    """The validation part of `split` of `dataset` through `labeler`, and the floor (real_floor)."""
    images = dataset.images[split.validation]
    styles = dataset.styles.iloc[split.validation]
    real = RealValidation(images, styles, labeler.schema.encode_frame(styles), labeler.scores(images),
                          penultimate_features(labeler, images), laplacian_energy(images),
                          *spectral_statistics(images), log_power_spectra(images, styles["subCategory"].to_numpy()))
    real.floor.update(real_floor(labeler, dataset, split, real, floor_seed))
    return real


def floor_rows(train_styles: pd.DataFrame, validation_styles: pd.DataFrame, seed: int = 0) -> tuple[np.ndarray, dict]:
    """For each validation row, a training row with its labels, drawn by `seed`: same sub-category,
    gender and colour (when the row has one); else same sub-category and gender; else same
    sub-category; else any. Positions into `train_styles`, and how many rows matched at each level."""
    if not len(train_styles):
        raise ValueError("the floor needs training photos; the split's training part is empty")
    rng = np.random.default_rng(seed)
    tables = []
    for columns in FLOOR_LEVELS:
        table: dict[tuple, list[int]] = {(): list(range(len(train_styles)))} if not columns else {}
        for position, key in enumerate(zip(*(train_styles[column].to_numpy() for column in columns))):
            table.setdefault(key, []).append(position)
        tables.append(table)
    chosen, levels = [], dict.fromkeys(("+".join(columns) or "any" for columns in FLOOR_LEVELS), 0)
    for _, row in validation_styles.iterrows():
        for columns, table in zip(FLOOR_LEVELS, tables):
            if COLOUR in columns and row[COLOUR] in MISSING_VALUES:
                continue
            candidates = table.get(tuple(row[column] for column in columns))
            if candidates:
                chosen.append(candidates[rng.integers(len(candidates))])
                levels["+".join(columns) or "any"] += 1
                break
    return np.asarray(chosen, np.int64), levels


def real_floor(labeler: Labeler, dataset, split, real: RealValidation, seed: int = 0) -> dict:
    """What a perfect generator would score: one real TRAINING photo per validation row with that
    row's labels (floor_rows), measured against the validation photos exactly as generated images
    are. The Fréchet distance is not 0 here: two samples of the same distribution differ."""
    rows, levels = floor_rows(dataset.styles.iloc[split.train], real.styles, seed)
    images = dataset.images[np.asarray(split.train)[rows]]
    features = penultimate_features(labeler, images)
    return {"n": len(rows), "seed": seed, "matched_by": levels,
            **_set_metrics(real, images, features)}


def evaluate_generator(generator: Generator, labeler: Labeler, dataset, split, seeds_per_pair: int = 16,
                       seed: int = 0, min_class_images: int = MIN_CLASS_IMAGES,
                       real: RealValidation | None = None) -> dict:
    """Every quality number for one generator on the validation part of `split` of `dataset`
    (a `FashionData`): reconstruction, conditional accuracy over the (sub-category, gender) pairs
    present in the training part, and, between one generated image per validation row (its labels,
    a random code) and the real validation images: Fréchet distance, k-NN precision-recall,
    density/coverage, sharpness, lattice, texture and pattern ratios, and the floor's Fréchet distance
    and k-NN precision/recall beside them (`real_floor_*`). `min_class_images` applies to the
    per-class Fréchet distances; the pattern ratio's classes are `real`'s (MIN_CLASS_IMAGES). The
    distance is None with fewer than 2 validation images, the k-NN numbers with KNN_K or fewer. The
    labeler judges the heads the generator shares with it by name (judged_heads); `real`:
    real_validation(labeler, dataset, split), when several generators are compared."""
    heads = judged_heads(generator, labeler)
    real = real or real_validation(labeler, dataset, split)
    truth = generator.schema.encode_frame(real.styles)  # the colour too, when the generator has it
    # the paper's model is conditioned on the classifier's scores, ours on the true labels
    conditions = generator.conditions_from_scores(real.scores, labeler.schema) if generator.arch == "paper" else truth
    result = reconstruction_metrics(generator, real.images, conditions, seed=seed)
    pairs = _training_pairs(dataset, split, generator.schema)
    result.update(_conditional_results(generator, labeler, real, pairs, seeds_per_pair, COLOUR in heads))
    # one generated image per validation row, conditioned on that row's labels
    codes = generator.latents(truth, seed)
    generated = np.concatenate([generator.decode(codes[i : i + BATCH], truth[i : i + BATCH])
                                for i in range(0, len(truth), BATCH)]) if len(truth) else real.images[:0]
    fake_features = penultimate_features(labeler, generated)
    result.update(_set_metrics(real, generated, fake_features))
    val_sub = real.styles["subCategory"].to_numpy()
    result["frechet_distance_per_subCategory"] = _distances_per_class(real.features, fake_features, val_sub,
                                                                      generator.schema.sub_categories,
                                                                      min_class_images)
    for key in ("frechet_distance", "knn_precision", "knn_recall"):
        result[f"real_floor_{key}"] = real.floor.get(key)
    return result


def _training_pairs(dataset, split, schema) -> list[tuple[str, str]]:
    """The (sub-category, gender) pairs of the training part that the schema knows, sorted."""
    train_styles = dataset.styles.iloc[split.train]
    in_schema = train_styles[train_styles["subCategory"].isin(schema.sub_categories)]
    return sorted(set(zip(in_schema["subCategory"], in_schema["gender"])))


def real_conditional_reference(labeler: Labeler, dataset, split, real: RealValidation) -> dict:
    """real_conditional_accuracy on the real validation photos over the training part's pairs, the
    colour too when the labeler has a colour head: the floor column of the conditional accuracies."""
    return real_conditional_accuracy(labeler.schema, real.scores, real.styles,
                                     _training_pairs(dataset, split, labeler.schema),
                                     colour=COLOUR in labeler.schema.heads)


def accuracy_on_real_pairs(per_pair: list[dict], styles: pd.DataFrame, colours: Iterable[str] | None = None) -> dict:
    """conditional_accuracy's per-pair entries averaged over only the pairs real_conditional_accuracy
    scores on the photos `styles`: those with at least one photo, and for the colour those with a
    photo of a colour in `colours` (None: no colour). A pair no validation photo has (the rarest,
    where generated images are labelled worst) is left out, so both sides measure the same pairs."""
    present = set(zip(styles["subCategory"], styles["gender"]))
    known = styles[styles[COLOUR].isin(list(colours))] if colours is not None else styles.iloc[:0]
    coloured = set(zip(known["subCategory"], known["gender"]))
    result = {}
    for column, kept in (("subCategory", present), ("gender", present), (COLOUR, coloured)):
        values = [entry[f"{column}_accuracy"] for entry in per_pair
                  if (entry["subCategory"], entry["gender"]) in kept and f"{column}_accuracy" in entry]
        result[f"{column}_accuracy"] = float(np.mean(values)) if values else None
    return result | {"pairs": sum((entry["subCategory"], entry["gender"]) in present for entry in per_pair)}


def _conditional_results(generator: Generator, labeler: Labeler, real: RealValidation, pairs, seeds: int,
                         colour: bool) -> dict:
    conditional = conditional_accuracy(generator, labeler, pairs, seeds=seeds)
    same = accuracy_on_real_pairs(conditional["per_pair"], real.styles,
                                  labeler.schema.heads[COLOUR] if colour else None)
    return {
        "conditional_subCategory_accuracy": conditional["subCategory_accuracy"],
        "conditional_gender_accuracy": conditional["gender_accuracy"],
        f"conditional_{COLOUR}_accuracy": conditional[f"{COLOUR}_accuracy"],
        "conditional_pairs": len(pairs),
        # the same over the pairs the real photos' reference below is scored on: the like-for-like comparison
        **{f"conditional_{column}_accuracy_real_pairs": same[f"{column}_accuracy"]
           for column in ("subCategory", "gender", COLOUR)},
        "conditional_real_pairs": same["pairs"],
        "conditional_per_pair": conditional["per_pair"],
        # what real validation photos of the same pairs score: the ceiling an honest generator can expect
        "real_validation_conditional_accuracy": real_conditional_accuracy(labeler.schema, real.scores, real.styles,
                                                                          pairs, colour=colour),
    }


def _set_metrics(real: RealValidation, images: np.ndarray, features: np.ndarray) -> dict:
    """The numbers that compare a set of images, one per validation row, with the validation photos."""
    lattice, spectrum = spectral_statistics(images)
    pattern, worst = pattern_ratio(log_power_spectra(images, real.styles["subCategory"].to_numpy()),
                                   real.class_spectra)
    return (_distances(real.features, features)
            | {"sharpness_ratio": sharpness_ratio(laplacian_energy(images), real.sharpness),
               "lattice_ratio": lattice_ratio(lattice, real.lattice),
               "texture_ratio": texture_ratio(spectrum, real.spectrum),
               "pattern_ratio": pattern, "pattern_subCategory": worst})


def _distances(real_features: np.ndarray, fake_features: np.ndarray) -> dict:
    """Fréchet distance, k-NN precision/recall and density/coverage; too few images for a covariance /
    a k-NN ball: None (reported as n/a), not NaN."""
    n = min(len(real_features), len(fake_features))
    result = {"frechet_distance": frechet_distance(real_features, fake_features) if n >= 2 else None}
    manifold = manifold_metrics(real_features, fake_features, k=KNN_K) if n > KNN_K else {}
    return result | {f"knn_{name}": manifold.get(name) for name in ("precision", "recall")} | {
        name: manifold.get(name) for name in ("density", "coverage")}


def _distances_per_class(real_features: np.ndarray, fake_features: np.ndarray, sub_categories: np.ndarray,
                         names, min_class_images: int) -> dict:
    per_class = {}
    for name in names:
        rows = np.flatnonzero(sub_categories == name)
        if len(rows) >= max(2, min_class_images):  # the distance is biased upwards on small samples
            per_class[name] = {"n": len(rows),
                               "frechet_distance": frechet_distance(real_features[rows], fake_features[rows])}
    return per_class
