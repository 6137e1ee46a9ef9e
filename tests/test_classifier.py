"""fashiongen.labeler (model and labeler): architectures, backbone weights, the feature split, HeadAccuracy and the Labeler."""

from __future__ import annotations

import io
import json
import socket
import time
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from PIL import Image

from fashiongen.errors import ClassifierError
from fashiongen.imaging import IMAGE_SHAPE, load_image
from fashiongen.labeler.labeler import MODEL_FILE, Labeler, save_bundle
from fashiongen.labeler.model import (
    ARCHITECTURES,
    DOWNLOAD_TIMEOUT,
    HeadAccuracy,
    build_classifier,
    compile_classifier,
    split_at_features,
)
from fashiongen.model_folder import CARD_FILE, LABELER, SCHEMA_FILE
from fashiongen.schema import LabelSchema

SCHEMA = LabelSchema(tuple(f"Sub{i:02d}" for i in range(20)), ("Men", "Women", "Boys", "Girls", "Unisex"))
N_SUB, N_GENDER = len(SCHEMA.sub_categories), len(SCHEMA.genders)
RETRAIN_HINT = "scripts/train_classifier.py"


def unit_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n,) + IMAGE_SHAPE, dtype=np.float32)


def uint8_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n,) + IMAGE_SHAPE, dtype=np.uint8)


def build(arch: str, **kwargs) -> keras.Model:
    return build_classifier(SCHEMA, arch, **kwargs)


def nested_backbone(model: keras.Model) -> keras.Model:
    (backbone,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return backbone


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- architectures


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_arch_maps_images_to_25_probabilities(arch: str) -> None:
    model = build(arch)
    scores = np.asarray(model(unit_images(3), training=False))
    assert scores.shape == (3, SCHEMA.size) == (3, 25)
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert model.input_shape == (None,) + IMAGE_SHAPE


def test_paper_arch_freezes_the_backbone_and_trains_a_1024_unit_head() -> None:
    model = build("paper")
    head_dense, scores = model.get_layer("head_dense"), model.get_layer("scores")
    assert head_dense.units == 1024 and head_dense.activation is keras.activations.relu
    backbone = nested_backbone(model)
    assert not backbone.trainable and backbone.trainable_weights == []
    assert len(backbone.non_trainable_weights) > 100  # the whole MobileNetV2 is there, frozen
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in head_dense.weights + scores.weights}


@pytest.mark.parametrize("arch", ["compact", "mobilenet"])
def test_from_scratch_archs_train_every_layer(arch: str) -> None:
    model = build(arch)
    assert model.non_trainable_weights == [w for w in model.weights if "moving_" in w.path]
    if arch == "mobilenet":
        # momentum 0.9, not Keras' 0.999: from scratch the moving averages must keep up
        norms = [layer for layer in nested_backbone(model).layers if isinstance(layer, keras.layers.BatchNormalization)]
        assert norms and {layer.momentum for layer in norms} == {0.9}


def test_unknown_arch_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet'") as raised:
        build("resnet")
    for name in ARCHITECTURES:
        assert name in str(raised.value)


# ----------------------------------------------------------------------------- backbone weights


def _online(host: str = "storage.googleapis.com") -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


def test_imagenet_weights_offline_fail_fast_with_the_fix() -> None:
    if _online():
        pytest.skip("online: the ImageNet download would succeed here")
    started = time.perf_counter()
    with pytest.raises(ClassifierError) as raised:
        build("paper", backbone_weights="imagenet")
    elapsed = time.perf_counter() - started
    message = str(raised.value)
    assert "Could not download the ImageNet weights" in message
    assert "--backbone-weights" in message
    # measured 0.6 s here (the name lookup fails); a stalled connection is cut after DOWNLOAD_TIMEOUT
    assert elapsed < DOWNLOAD_TIMEOUT + 15
    assert socket.getdefaulttimeout() is None  # the timeout is not left set for the process


def test_imagenet_download_runs_with_a_socket_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras.src.utils import file_utils  # what keras.applications downloads with

    seen = []

    def stalled_download(*args, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise TimeoutError("timed out")

    monkeypatch.setattr(file_utils, "get_file", stalled_download)
    with pytest.raises(ClassifierError, match="TimeoutError: timed out.*--backbone-weights"):
        build("paper", backbone_weights="imagenet")
    assert seen == [DOWNLOAD_TIMEOUT]
    assert socket.getdefaulttimeout() is None


def test_local_backbone_weights_file_is_loaded(tmp_path: Path) -> None:
    source = keras.applications.MobileNetV2(input_shape=IMAGE_SHAPE, include_top=False, weights=None)
    path = tmp_path / "mobilenet_v2_no_top.weights.h5"  # Keras 3's save_weights needs this suffix
    source.save_weights(path)
    loaded = nested_backbone(build("paper", backbone_weights=str(path))).get_weights()
    expected = source.get_weights()
    assert len(loaded) == len(expected)
    for got, want in zip(loaded, expected):
        np.testing.assert_array_equal(got, want)
    fresh = nested_backbone(build("paper")).get_weights()  # proves the comparison can fail
    assert any(not np.array_equal(a, b) for a, b in zip(fresh, expected))


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, while the load fails
def test_backbone_weights_of_another_shape_are_a_classifier_error(tmp_path: Path) -> None:
    source = keras.applications.MobileNetV2(input_shape=IMAGE_SHAPE, include_top=False, weights=None)  # alpha 1.0
    path = tmp_path / "alpha1.weights.h5"
    source.save_weights(path)
    with pytest.raises(ClassifierError, match="Could not build MobileNetV2 with weights"):
        build("mobilenet", backbone_weights=str(path))  # alpha 0.35


def test_missing_backbone_weights_file_is_a_classifier_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.h5"
    with pytest.raises(ClassifierError, match="does not exist") as raised:
        build("paper", backbone_weights=str(missing))
    assert str(missing) in str(raised.value)


# ----------------------------------------------------------------------------- feature split


@pytest.mark.parametrize("arch", ["paper", "compact"])
def test_extractor_then_head_equals_the_full_model(arch: str) -> None:
    model = build(arch)
    extractor, head = split_at_features(model)
    images = unit_images(4, seed=1)
    features = extractor(images, training=False)
    assert features.shape == (4, model.get_layer("features").output.shape[-1])
    np.testing.assert_allclose(head(features, training=False), model(images, training=False), rtol=0, atol=1e-6)
    # the parts share the model's layers: training the head trains the model
    assert {id(w) for w in head.weights} <= {id(w) for w in model.weights}


# ----------------------------------------------------------------------------- HeadAccuracy


def head_accuracy_reference(y_true, y_pred, start, stop, weights) -> float:
    truth, guess = y_true[:, start:stop], y_pred[:, start:stop]
    counted = (truth.sum(axis=1) > 0) & (weights > 0)
    return float((truth.argmax(axis=1) == guess.argmax(axis=1))[counted].mean())


def test_head_accuracy_matches_numpy_and_skips_unlabelled_and_zero_weight_rows() -> None:
    rng = np.random.default_rng(7)
    n = 60
    y_true = np.stack([SCHEMA.encode(SCHEMA.sub_categories[rng.integers(N_SUB)], SCHEMA.genders[rng.integers(N_GENDER)])
                       for _ in range(n)])
    unlabelled = rng.random(n) < 0.3
    y_true[unlabelled, :N_SUB] = 0.0  # a sub-category outside the schema
    y_pred = rng.random((n, SCHEMA.size)).astype(np.float32)
    y_pred[:20, :N_SUB] = y_true[:20, :N_SUB]  # some hits, so the accuracy is not just chance
    weights = (rng.random(n) < 0.8).astype(np.float32)
    for start, stop in ((0, N_SUB), (N_SUB, SCHEMA.size)):
        metric = HeadAccuracy(start, stop, name="accuracy")
        metric.update_state(y_true[:25], y_pred[:25])  # two batches: the counts accumulate
        metric.update_state(y_true[25:], y_pred[25:])
        expected = head_accuracy_reference(y_true, y_pred, start, stop, np.ones(n))
        assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
        metric.reset_state()
        assert float(metric.result()) == 0.0
        metric.update_state(y_true, y_pred, sample_weight=weights)
        expected = head_accuracy_reference(y_true, y_pred, start, stop, weights)
        assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    assert unlabelled.any() and head_accuracy_reference(y_true, y_pred, 0, N_SUB, np.ones(n)) != pytest.approx(
        float(np.mean(y_true[:, :N_SUB].argmax(1) == y_pred[:, :N_SUB].argmax(1)))
    )  # counting the unlabelled rows would give another number


# ----------------------------------------------------------------------------- the labeler


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, Path]:
    """A compact model after one Adam step (so it has optimizer state), saved with save_bundle."""
    model = build("compact")
    compile_classifier(model, SCHEMA)
    y = np.stack([SCHEMA.encode(SCHEMA.sub_categories[i], SCHEMA.genders[i % N_GENDER]) for i in range(4)])
    model.fit(unit_images(4), y, batch_size=4, epochs=1, verbose=0)
    assert model.optimizer.variables  # Adam's moments exist and must not be saved
    folder = tmp_path_factory.mktemp("bundle") / "classifier"
    save_bundle(folder, model, SCHEMA, {"arch": "compact", "note": np.float32(0.5)})
    return model, folder


@pytest.fixture
def bundle_copy(trained, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name, data in folder_bytes(trained[1]).items():
        (folder / name).write_bytes(data)
    return folder


def test_save_then_load_gives_identical_scores(trained) -> None:
    model, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.keras", "labels.json", "model_card.json"]
    loaded = Labeler.load(folder)
    assert loaded.schema == SCHEMA
    assert loaded.card == {"arch": "compact", "note": 0.5}
    images = uint8_images(5)
    np.testing.assert_array_equal(loaded.scores(images), Labeler(model, SCHEMA).scores(images))
    assert loaded.scores(images[0]).shape == (1, SCHEMA.size)  # one image without a batch axis


def test_saved_model_has_no_optimizer_state(trained) -> None:
    model, folder = trained
    path = folder / MODEL_FILE
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    assert not config.get("compile_config")
    names: list[str] = []
    with h5py.File(io.BytesIO(weights), "r") as store:
        store.visit(names.append)
    assert names and not [name for name in names if "optimizer" in name]
    weight_bytes = sum(w.numpy().nbytes for w in model.weights)
    assert path.stat().st_size < 1.5 * weight_bytes  # with Adam's two moments it would be ~3x


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_label_an_upload_ranks_schema_names(trained, fmt: str) -> None:
    labeler = Labeler(trained[0], SCHEMA)
    pixels = np.random.default_rng(3).integers(0, 256, (150, 100, 3), dtype=np.uint8)  # not 60x80
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    upload = buffer.getvalue()
    prediction = labeler.label(upload, name=f"shirt.{fmt.lower()}")
    assert sorted(name for name, _ in prediction.sub_category) == sorted(SCHEMA.sub_categories)
    assert sorted(name for name, _ in prediction.gender) == sorted(SCHEMA.genders)
    for ranked in (prediction.sub_category, prediction.gender):
        probabilities = [p for _, p in ranked]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probabilities)
    expected = labeler.scores(load_image(upload))[0]  # the same preprocessing as the training data
    np.testing.assert_allclose(prediction.scores, expected, rtol=0, atol=1e-6)
    top_index = SCHEMA.sub_categories.index(prediction.top_sub_category[0])
    assert top_index == int(np.argmax(expected[:N_SUB]))
    assert prediction.top_sub_category[1] == pytest.approx(float(expected[top_index]), abs=1e-6)
    assert SCHEMA.genders.index(prediction.top_gender[0]) == int(np.argmax(expected[N_SUB:]))


def test_scores_rejects_float_and_misshapen_images(trained) -> None:
    labeler = Labeler(trained[0], SCHEMA)
    with pytest.raises(ValueError, match="expected uint8 images"):
        labeler.scores(unit_images(2))
    with pytest.raises(ValueError, match="expected uint8 images"):
        labeler.scores(np.zeros((2, 60, 80, 3), np.uint8))


def test_labeler_refuses_a_schema_of_another_size(trained) -> None:
    with pytest.raises(ClassifierError, match="25 outputs, the schema 7"):
        Labeler(trained[0], LabelSchema(("a", "b"), ("m", "w", "x", "y", "z")))


@pytest.mark.parametrize("missing", [None, MODEL_FILE, SCHEMA_FILE])
def test_load_missing_folder_or_file_names_it_and_the_retrain_command(bundle_copy: Path, missing: str | None) -> None:
    folder = bundle_copy.parent / "no-such-model" if missing is None else bundle_copy
    named = folder / (missing or MODEL_FILE)
    if missing:
        named.unlink()
    with pytest.raises(ClassifierError) as raised:
        Labeler.load(folder)
    assert str(named) in str(raised.value) and RETRAIN_HINT in str(raised.value)


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "bad card"])
def test_load_corrupt_files_names_them_and_the_retrain_command(bundle_copy: Path, damage: str) -> None:
    model_path = bundle_copy / MODEL_FILE
    if damage == "random bytes":
        named = model_path
        model_path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif damage == "truncated":
        named = model_path
        model_path.write_bytes(model_path.read_bytes()[: model_path.stat().st_size // 2])
    else:
        named = bundle_copy / CARD_FILE
        named.write_text('{"arch": "compact", ')
    with pytest.raises(ClassifierError) as raised:
        Labeler.load(bundle_copy)
    assert str(named) in str(raised.value) and RETRAIN_HINT in str(raised.value)


def test_save_bundle_replaces_an_existing_folder_and_leaves_nothing_behind(trained, tmp_path: Path) -> None:
    model, _ = trained
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "stale.txt").write_text("from an older model")
    Labeler(model, SCHEMA, {"version": 1}).save(folder)
    assert json.loads((folder / CARD_FILE).read_text()) == {"version": 1}
    assert not (folder / "stale.txt").exists()  # the folder was swapped, not written into
    save_bundle(folder, model, SCHEMA, {"version": 2})
    assert json.loads((folder / CARD_FILE).read_text()) == {"version": 2}
    assert Labeler.load(folder).card == {"version": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging or .old folder


def test_a_failed_save_leaves_the_previous_model_untouched(trained, bundle_copy: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    before = folder_bytes(bundle_copy)

    def disk_full(self, path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LabelSchema, "save", disk_full)  # fails after the model file is written
    with pytest.raises(OSError, match="No space left"):
        save_bundle(bundle_copy, trained[0], SCHEMA, {"version": "new"})
    assert folder_bytes(bundle_copy) == before
    assert [p.name for p in bundle_copy.parent.iterdir()] == [bundle_copy.name]


def assert_names_and_retrains(raised: pytest.ExceptionInfo, named: Path) -> None:
    message = str(raised.value)
    assert message.startswith(f"{named} ") and message.endswith(f"Retrain it with: {LABELER.retrain_command(named.parent)}")


def test_a_card_that_is_not_an_object_is_refused_at_load(bundle_copy: Path) -> None:
    """app_pages/about.py calls card.get: a card of [1, 2] crashed it instead of failing here."""
    (bundle_copy / CARD_FILE).write_text("[1, 2]")
    with pytest.raises(ClassifierError) as raised:
        Labeler.load(bundle_copy)
    assert_names_and_retrains(raised, bundle_copy / CARD_FILE)


def test_labels_given_as_strings_are_refused_not_split_into_letters(bundle_copy: Path) -> None:
    # 20 + 5 letters: as wide as the model, so only the shape check can catch it
    (bundle_copy / SCHEMA_FILE).write_text(json.dumps({"sub_categories": "abcdefghijklmnopqrst",
                                                                  "genders": "MWBGU"}))
    with pytest.raises(ClassifierError) as raised:
        Labeler.load(bundle_copy)
    assert_names_and_retrains(raised, bundle_copy / SCHEMA_FILE)
    assert "sub_categories is a string, not a list of names" in str(raised.value)


def test_a_model_of_another_width_than_its_labels_names_both_files(bundle_copy: Path) -> None:
    inputs = keras.Input(IMAGE_SHAPE)
    keras.Model(inputs, keras.layers.Dense(7)(keras.layers.Flatten()(inputs))).save(bundle_copy / MODEL_FILE)
    with pytest.raises(ClassifierError) as raised:
        Labeler.load(bundle_copy)
    assert_names_and_retrains(raised, bundle_copy / SCHEMA_FILE)
    assert f"names 25 labels, but {bundle_copy / MODEL_FILE} gives 7 scores" in str(raised.value)


def test_a_model_that_takes_other_images_is_refused(bundle_copy: Path) -> None:
    inputs = keras.Input((64, 64, 3))
    keras.Model(inputs, keras.layers.Dense(SCHEMA.size)(keras.layers.Flatten()(inputs))).save(
        bundle_copy / MODEL_FILE)
    with pytest.raises(ClassifierError) as raised:
        Labeler.load(bundle_copy)
    assert_names_and_retrains(raised, bundle_copy / MODEL_FILE)
    assert "takes inputs of shape [(64, 64, 3)], not one 80x60x3 image" in str(raised.value)


def test_heads_crossentropy_sums_each_heads_loss_and_skips_rows_outside_a_head() -> None:
    """Two heads (3 + 2 columns): row 0 is in both, row 1 has no class in the first head."""
    from fashiongen.labeler.model import HeadsCrossentropy

    loss = HeadsCrossentropy({"a": slice(0, 3), "b": slice(3, 5)})
    y_true = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 1]], np.float32)
    y_pred = np.array([[0.2, 0.5, 0.3, 0.9, 0.1], [0.6, 0.2, 0.2, 0.25, 0.75]], np.float32)
    per_row = np.asarray(loss.call(y_true, y_pred))
    np.testing.assert_allclose(per_row, [-np.log(0.5) - np.log(0.9), -np.log(0.75)], rtol=1e-5)


def test_shift_zero_and_width_32_rebuild_the_november_compact_network() -> None:
    """The shipped two-head labeler was trained with flips only and the paper's sigmoids: --shift 0
    --heads paper must give its exact layers and weight shapes, so its recipe can still be re-run."""
    shipped = Labeler.load(LABELER.shipped).model
    rebuilt = build_classifier(SCHEMA_OF_SHIPPED, "compact", shift=0.0, sigmoids=True)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in shipped.layers]
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in shipped.weights]
    assert "augment_shift" in [layer.name for layer in build_classifier(SCHEMA_OF_SHIPPED, "compact").layers]


SCHEMA_OF_SHIPPED = LabelSchema.load(LABELER.shipped / SCHEMA_FILE)


def test_anti_aliased_compact_blurs_before_every_stride_and_the_blur_stays_fixed() -> None:
    model = build("compact", anti_alias=True, shift=0.0)
    strided = [layer.name for layer in model.layers if max(getattr(layer, "strides", (1,))) > 1]
    assert strided == ["blur1_1", "blur1", "blur2", "blur3"]  # every downsampling, and only by a blur
    taps = np.outer([1, 2, 1], [1, 2, 1]) / 16
    # a pattern of period 2, the finest there is, comes out of the blur flat: nothing of it folds
    # into the coarser grid (a bare stride would keep one phase of it, all ones or all zeros)
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(np.float32)
    blurred = np.asarray(model.get_layer("blur1_1")(np.repeat(checker[None, :, :, None], 32, axis=-1)))
    np.testing.assert_allclose(blurred[0, 1:-1, 1:-1], 0.5, atol=1e-6)
    compile_classifier(model, SCHEMA, 1e-2)
    labels = np.zeros((8, SCHEMA.size), np.float32)
    labels[:, 0] = labels[:, N_SUB] = 1
    model.fit(unit_images(8), labels, epochs=1, verbose=0)
    for name in strided:
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0][:, :, 0, 0], taps)
