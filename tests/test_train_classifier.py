"""scripts/train_classifier.py on the tiny dataset: outputs, interrupt and resume, errors, paper, mirrored."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from conftest import assert_help_mentions, make_tiny_dataset
from helpers import (
    REPO,
    assert_unwritable_output_stops_training,
    folder_bytes,
    keep_only,
    load_script,
    one_error_line,
    read_card,
    run_dir_held_by_another_process,
    run_in_fresh_process,
)

from fashiongen import training
from fashiongen.dataset import load_dataset
from fashiongen.labeler.labeler import MODEL_FILE, Labeler
from fashiongen.labeler.model import DEFAULT_ARCH, HeadsCrossentropy
from fashiongen.labeler.report import classification_report
from fashiongen.model_folder import SCHEMA_FILE
from fashiongen.schema import LabelSchema
from fashiongen.splits import make_split

SCRIPT = REPO / "scripts" / "train_classifier.py"
FLAGS = (
    "--data-dir", "--out", "--run-dir", "--arch", "--backbone-weights", "--epochs", "--batch-size",
    "--learning-rate", "--split", "--seed", "--split-seed", "--limit", "--paper-loop", "--resume", "--strategy",
    "--cpu-devices", "--cache-dir", "--quiet", "--replace", "--heads", "--shift", "--width", "--calibrate",
    "--outlier-method", "--anti-alias", "--adversarial-epsilon",
)
cli = load_script(SCRIPT)


def tiny_args(data_dir: Path, root: Path, *extra: str) -> list[str]:
    """A small run: everything written under `root` (cache, run dir, model)."""
    return ["--data-dir", str(data_dir), "--cache-dir", str(root / "cache"), "--run-dir", str(root / "run"),
            "--out", str(root / "out"), "--batch-size", "4", "--quiet", *extra]


def history_lengths(card: dict) -> set[int]:
    return {len(values) for values in card["training"]["history"].values()}


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the confusion figures (Kaleido starts a browser: ~5 s a run); the full run makes them."""
    monkeypatch.setattr(cli, "save_confusion_figures", lambda report, out_dir: [])


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("full-run")
    data_dir = make_tiny_dataset(root / "fashion-small")
    argv = tiny_args(data_dir, root, "--epochs", "2")
    code = cli.main(argv)
    return SimpleNamespace(code=code, argv=argv, data_dir=data_dir, root=root, out=root / "out", run=root / "run")


# ----------------------------------------------------------------------------- a whole run


def test_run_writes_model_card_logs_and_report(full_run) -> None:
    assert full_run.code == 0
    assert sorted(p.name for p in full_run.out.iterdir()) == ["classifier.keras", "labeler.json", "labels.json",
                                                              "model_card.json", "outliers.npz"]
    card = read_card(full_run.out)
    assert {"model", "arch", "command", "data", "split", "training", "metrics"} <= card.keys()
    assert card["model"] == "classifier" and card["arch"] == DEFAULT_ARCH
    assert card["command"] == shlex.join(["python", "scripts/train_classifier.py", *full_run.argv])
    # the whole configuration beside the command: given flags and defaults alike
    assert card["config"] == {**card["config"], "epochs": 2, "batch_size": 4, "data_dir": str(full_run.data_dir),
                              "learning_rate": 0.002, "split": "random", "seed": 42, "run_dir": str(full_run.run)}
    assert card["data"]["images"] == 11 and card["data"]["styles_rows_without_image"] == 1
    assert card["split"]["n_train"] + card["split"]["n_validation"] == 11
    assert card["training"]["epochs"] == 2 and history_lengths(card) == {2}
    validation = card["metrics"]["validation"]
    assert {"subCategory_accuracy", "gender_accuracy", "micro_auc"} <= validation.keys()
    assert list((full_run.run / "tensorboard").rglob("events.out.tfevents.*"))
    report = json.loads((full_run.run / "validation_report.json").read_text())
    assert report["micro_auc"] == validation["micro_auc"] and "per_class" in report
    assert (full_run.run / "confusion_gender.html").is_file()
    # calibrated on the validation photos: a temperature per head, the detector measured on the non-product set
    assert set(card["metrics"]["calibration"]) == {"subCategory", "gender"}
    detector = card["metrics"]["not_a_product"]
    assert detector["method"] == "nearest_neighbour" and detector["non_product_set"]["noise"] >= 30


def test_saved_model_loads_and_is_the_evaluated_one(full_run) -> None:
    labeler = Labeler.load(full_run.out)
    dataset = load_dataset(full_run.data_dir, cache_dir=full_run.root / "cache")
    schema = LabelSchema.from_styles(dataset.styles)
    assert labeler.schema == schema
    rows = make_split("random", dataset, 42).validation
    # the card's validation metrics are the network's own scores, before temperature scaling
    bare = Labeler(labeler.model, labeler.schema)
    report = classification_report(dataset.labels(schema)[rows], bare.scores(dataset.images[rows]), schema)
    card = read_card(full_run.out)
    assert report["loss"] == pytest.approx(card["metrics"]["validation"]["loss"], abs=1e-6)
    assert labeler.card == card


# ----------------------------------------------------------------------------- the better model in --out


def answer(folder: Path, run: SimpleNamespace, right: bool) -> float:
    """Make the classifier in `folder` give every image the validation rows' labels (`right`) or
    their opposite: a model far better, or far worse, than a tiny run. Returns its validation loss."""
    labeler = Labeler.load(folder)
    dataset = load_dataset(run.data_dir, cache_dir=run.root / "cache")
    rows = make_split("random", dataset, 42).validation
    labels = dataset.labels(labeler.schema)[rows]
    for column, part in labeler.schema.slices.items():  # each softmax head answers its shares, whatever the image
        shares = labels[:, part].mean(axis=0)
        wanted = np.clip(shares if right else 1 - shares, 0.02, 0.98)
        head = labeler.model.get_layer(f"head_{column}")
        kernel, _ = head.get_weights()
        head.set_weights([np.zeros_like(kernel), np.log(wanted / wanted.sum()).astype(np.float32)])
    labeler.save(folder)
    bare = Labeler(labeler.model, labeler.schema)  # as keep-better scores it: before temperature scaling
    return classification_report(labels, bare.scores(dataset.images[rows]), labeler.schema)["loss"]


def line_starting(text: str, start: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(start)]
    assert len(lines) == 1, text
    return lines[0]


def test_a_better_model_in_out_is_kept_unless_replace(full_run, tmp_path: Path, capsys, no_figures) -> None:
    """The issue's quick trial (--limit, one epoch) against a good model in --out."""
    out = shutil.copytree(full_run.out, tmp_path / "out")
    old_loss = answer(out, full_run, right=True)
    before = folder_bytes(out)
    argv = tiny_args(full_run.data_dir, tmp_path, "--limit", "4", "--epochs", "1")
    assert cli.main(argv) == 0
    assert folder_bytes(out) == before
    kept = tmp_path / "run" / "model"
    new_loss = read_card(kept)["metrics"]["validation"]["loss"]
    assert new_loss > old_loss + 0.1
    line = line_starting(capsys.readouterr().out, "kept ")
    assert line == (f"kept {out}: this run's model is not better (this run's validation loss {new_loss:.5f}, "
                    f"the model in {out} {old_loss:.5f}, on the same 1 validation images); this run's model "
                    f"is in {kept} (--replace overwrites)")
    Labeler.load(kept)

    assert cli.main([*argv, "--replace"]) == 0
    assert "because of --replace" in line_starting(capsys.readouterr().out, "replaced ")
    assert read_card(out)["command"].endswith("--replace")


@pytest.mark.parametrize("damage", ["corrupt", "schema"])
def test_a_model_in_out_that_cannot_be_compared_needs_replace(full_run, tmp_path: Path, capsys, damage: str,
                                                             no_figures) -> None:
    out = shutil.copytree(full_run.out, tmp_path / "out")
    if damage == "corrupt":
        (out / MODEL_FILE).write_bytes(b"not a Keras file")
        reason = f"{out / MODEL_FILE} is corrupt or not a Keras model"
    else:
        schema = json.loads((out / SCHEMA_FILE).read_text())
        schema["sub_categories"][0] = "Something else"
        (out / SCHEMA_FILE).write_text(json.dumps(schema))
        reason = "its label schema (6 subCategory, 5 gender) is not this run's (6 subCategory, 5 gender)"
    before = folder_bytes(out)
    argv = tiny_args(full_run.data_dir, tmp_path, "--epochs", "1")
    assert cli.main(argv) == 2  # before training: the run would be thrown away
    line = one_error_line(capsys.readouterr().err)
    assert reason in line and "pass --replace to overwrite it" in line and "Retrain" not in line
    assert folder_bytes(out) == before and not (tmp_path / "run").exists()
    if damage == "corrupt":
        assert cli.main([*argv, "--replace"]) == 0
        assert Labeler.load(out).card["command"].endswith("--replace")


# ----------------------------------------------------------------------------- interrupt and resume


def test_interrupt_keeps_the_previous_model_and_resume_trains_the_rest(
    full_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, no_figures
) -> None:
    shutil.copytree(full_run.out, tmp_path / "out")  # a previously saved model
    answer(tmp_path / "out", full_run, right=False)  # and a bad one: the finished run replaces it
    before = folder_bytes(tmp_path / "out")
    argv = tiny_args(full_run.data_dir, tmp_path, "--epochs", "3")
    interrupted: dict[str, object] = {}

    def interrupt_second_epoch(self, epoch, logs=None):
        if epoch == 1:
            interrupted["weights"] = self.model.get_weights()  # what the backup after epoch 0 holds
            raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_begin", interrupt_second_epoch)
    assert cli.main(argv) == 130
    assert "--resume" in one_error_line(capsys.readouterr().err)
    assert folder_bytes(tmp_path / "out") == before
    backup = tmp_path / "run" / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1

    resumed: list[tuple[int, list[np.ndarray]]] = []
    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_begin",
                        lambda self, epoch, logs=None: resumed.append((epoch, self.model.get_weights())))
    assert cli.main([*argv, "--resume"]) == 0
    assert "which is better" in line_starting(capsys.readouterr().out, "replaced ")
    assert [epoch for epoch, _ in resumed] == [1, 2]  # epoch 0 is not trained again
    for restored, saved in zip(resumed[0][1], interrupted["weights"], strict=True):
        np.testing.assert_array_equal(restored, saved)  # it continued from the backup, not from scratch
    card = read_card(tmp_path / "out")
    assert card["training"]["epochs"] == 3 and history_lengths(card) == {2}
    assert folder_bytes(tmp_path / "out") != before
    assert not backup.exists()  # a finished run deletes its backup


def test_a_corrupt_image_is_skipped_and_listed_in_report_and_card(tiny_dataset: Path, tmp_path: Path, capsys,
                                                                  no_figures) -> None:
    target = tiny_dataset / "images" / "3.jpg"
    target.write_bytes(target.read_bytes()[:300])  # truncated, as by an interrupted copy
    assert cli.main(tiny_args(tiny_dataset, tmp_path, "--epochs", "1")) == 0
    report = capsys.readouterr().out
    assert "10 images (1 styles rows without an image, 1 unreadable images skipped)" in report
    assert f"skipped: {target} is a corrupt or truncated image" in report
    card = read_card(tmp_path / "out")
    assert card["data"]["images"] == 10 and card["data"]["unreadable_images"] == 1
    assert list(card["data"]["unreadable_image_reasons"]) == ["3"]
    assert card["split"]["n_train"] + card["split"]["n_validation"] == 10


@pytest.mark.parametrize(("ids", "extra", "message"), [
    ((), (), "no sub-categories and no genders to learn"),
    ((1,), (), "too little data in {data}: 1 usable images (11 styles rows without an image, 0 unreadable) give "
               "0 train and 1 validation images with the random split"),
    ((2, 12), ("--split", "grouped"), "give 0 train and 2 validation images with the grouped split"),
], ids=["no-images", "one-image", "one-duplicate-group"])
def test_too_little_data_is_one_line_before_a_model_is_built(tiny_dataset: Path, tmp_path: Path, capsys,
                                                            monkeypatch: pytest.MonkeyPatch, ids, extra,
                                                            message: str) -> None:
    keep_only(tiny_dataset, ids)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(cli, "build_classifier", no_model)
    assert cli.main(tiny_args(tiny_dataset, tmp_path, *extra)) == 2
    assert message.format(data=tiny_dataset) in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_split_seed_keeps_the_validation_photos_of_another_seed(tiny_dataset: Path, tmp_path: Path) -> None:
    def validation(*flags: str) -> list[int]:
        return list(cli.load_data(cli.parse_args(tiny_args(tiny_dataset, tmp_path, *flags))).split.validation)

    assert validation("--seed", "5") != validation()  # the seed alone moves the split (it would hide the test)
    assert validation("--seed", "5", "--split-seed", "42") == validation()
    assert cli.parse_args(tiny_args(tiny_dataset, tmp_path, "--seed", "5")).split_seed == 5


def test_a_run_folder_another_live_run_holds_is_refused_in_one_line(tiny_dataset: Path, tmp_path: Path,
                                                                    capsys) -> None:
    with run_dir_held_by_another_process(tmp_path / "run"):
        assert cli.main(tiny_args(tiny_dataset, tmp_path)) == 2
    assert "in use by another run" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_resume_with_nothing_to_resume_is_one_line(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(tiny_args(tiny_dataset, tmp_path, "--resume")) == 2
    assert "nothing to resume" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_missing_data_dir_points_to_the_download_script(tmp_path: Path, capsys) -> None:
    assert cli.main(tiny_args(tmp_path / "nowhere", tmp_path)) == 2
    assert "download_data.py" in one_error_line(capsys.readouterr().err)


def test_cpu_devices_after_tensorflow_started_is_one_line(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    import tensorflow as tf

    tf.config.list_logical_devices()  # TensorFlow is running in this process now
    assert cli.main(tiny_args(tiny_dataset, tmp_path, "--strategy", "mirrored", "--cpu-devices", "2")) == 2
    assert "--cpu-devices must be set before TensorFlow starts" in one_error_line(capsys.readouterr().err)


def test_help_mentions_every_flag(capsys) -> None:
    assert_help_mentions(cli.main, FLAGS, capsys)


# ----------------------------------------------------------------------------- paper and distribution


@pytest.mark.parametrize("loop", [False, True], ids=["cached-features", "paper-loop"])
def test_paper_arch_finishes(tiny_dataset: Path, tmp_path: Path, loop: bool, no_figures) -> None:
    extra = ["--arch", "paper", "--epochs", "1"] + (["--paper-loop"] if loop else [])
    assert cli.main(tiny_args(tiny_dataset, tmp_path, *extra)) == 0
    card = read_card(tmp_path / "out")
    assert card["arch"] == "paper" and card["training"]["cached_backbone_features"] is (not loop)
    assert history_lengths(card) == {1}
    labeler = Labeler.load(tmp_path / "out")
    assert labeler.model.get_layer("head_dense").units == 1024


def test_anti_alias_reaches_the_saved_classifier(tiny_dataset: Path, tmp_path: Path, no_figures) -> None:
    assert cli.main(tiny_args(tiny_dataset, tmp_path, "--epochs", "1", "--anti-alias", "--no-calibrate")) == 0
    layers = [layer.name for layer in Labeler.load(tmp_path / "out").model.layers]
    assert {"blur1_1", "blur1", "blur2", "blur3"} <= set(layers)
    assert "--anti-alias" in read_card(tmp_path / "out")["command"]


def test_adversarial_epsilon_trains_on_moved_images_and_saves_the_plain_classifier(
        tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_figures) -> None:
    attacks, losses = [], []

    class Recorded(cli.AdversarialTraining):
        def adversarial(self, images, labels, sample_weight=None):
            attacks.append(self.epsilon)  # at tracing: the training step asked for moved images
            losses.append(self.loss)
            return super().adversarial(images, labels, sample_weight)

    monkeypatch.setattr(cli, "AdversarialTraining", Recorded)
    assert cli.main(tiny_args(tiny_dataset, tmp_path, "--epochs", "1", "--adversarial-epsilon", "8", "--shift", "0",
                              "--no-calibrate")) == 0
    assert attacks and attacks == pytest.approx([8 / 255] * len(attacks))
    # the catalog's softmax heads keep their loss behind the wrapper (not the sigmoids' BCE)
    assert all(isinstance(loss, HeadsCrossentropy) for loss in losses)
    model = Labeler.load(tmp_path / "out").model  # the classifier itself, not its trainer
    assert model.name == f"classifier_{DEFAULT_ARCH}" and model.get_layer("relu4_2")
    assert read_card(tmp_path / "out")["config"]["adversarial_epsilon"] == 8


@pytest.mark.parametrize("extra, message", [
    (("--adversarial-epsilon", "-1"), "in [0, 255)"),
    (("--adversarial-epsilon", "nan"), "in [0, 255)"),
    (("--adversarial-epsilon", "255"), "in [0, 255)"),
    (("--adversarial-epsilon", "4", "--arch", "paper"), "needs --paper-loop"),
    (("--adversarial-epsilon", "4"), "needs --shift 0"),
])
def test_an_adversarial_epsilon_it_cannot_use_is_refused(tiny_dataset: Path, tmp_path: Path, capsys,
                                                         extra: tuple, message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tiny_args(tiny_dataset, tmp_path, *extra))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_mirrored_strategy_on_two_cpu_devices(tiny_dataset: Path, tmp_path: Path) -> None:
    run_in_fresh_process(SCRIPT, tiny_args(tiny_dataset, tmp_path, "--epochs", "1", "--strategy", "mirrored",
                                           "--cpu-devices", "2"))
    card = read_card(tmp_path / "out")
    assert "--strategy mirrored --cpu-devices 2" in card["command"]
    assert history_lengths(card) == {1}
    # the report scored each validation image once (not once per replica)
    assert card["metrics"]["validation"]["n_images"] == card["split"]["n_validation"]
    Labeler.load(tmp_path / "out")


@pytest.mark.parametrize("flag", ["--out", "--run-dir"])
def test_an_unwritable_output_is_one_line_before_the_training(tmp_path: Path, capsys, monkeypatch, flag: str) -> None:
    assert_unwritable_output_stops_training(cli, tiny_args(tmp_path / "data", tmp_path), flag, tmp_path, capsys,
                                            monkeypatch)


@pytest.mark.parametrize("new_loss, old_loss, kept", [
    (0.5, float("nan"), False),  # a broken model in --out is beaten
    (float("nan"), 0.5, True),  # a broken new model loses
    (0.5, float("inf"), False),
    (0.5, 0.4, True),
    (0.4, 0.5, False),
])
def test_keep_better_treats_a_non_finite_loss_as_the_worse(tmp_path: Path, capsys, new_loss: float,
                                                           old_loss: float, kept: bool) -> None:
    destination = training.keep_better(tmp_path / "out", tmp_path / "run", new_loss, old_loss, False, 3)
    assert destination == (tmp_path / "run" / "model" if kept else tmp_path / "out")
    assert capsys.readouterr().out.startswith("kept" if kept else "replaced")
