"""scripts/train_generator.py on the tiny dataset: outputs and card, keeping the better model,
interrupt and resume, one-line errors, the paper arch and a mirrored strategy."""

from __future__ import annotations

import json
import os
import re
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
    SCHEMA,
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
from fashiongen.generator.generator import CONFIG_FILE, DECODER_FILE, ENCODER_FILE, Generator
from fashiongen.generator.perceptual import COMPACT_LAYERS, random_features
from fashiongen.generator.prior import PRIOR_FILE
from fashiongen.generator.quality import reconstruction_metrics
from fashiongen.labeler.labeler import MODEL_FILE, Labeler
from fashiongen.model_folder import CARD_FILE, LABELER, SCHEMA_FILE
from fashiongen.splits import make_split

SCRIPT = REPO / "scripts" / "train_generator.py"
FLAGS = (
    "--data-dir", "--out", "--run-dir", "--arch", "--classifier", "--epochs", "--batch-size", "--learning-rate",
    "--latent-dim", "--kl-weight", "--kl-warmup-epochs", "--split", "--seed", "--split-seed", "--limit", "--resume",
    "--replace", "--strategy", "--cpu-devices", "--cache-dir", "--quiet", "--judge-weight", "--judge", "--judge-loss",
    "--init-from", "--freeze-encoder", "--colour", "--adversarial-weight", "--feature-matching-weight",
    "--adversarial-start-epochs", "--adversarial-ramp-epochs", "--discriminator-learning-rate",
    "--discriminator-shift", "--perceptual-weight", "--perceptual-classifier", "--perceptual-blocks",
    "--perceptual-shift", "--perceptual-random", "--adaptive-weight-reference", "--feature-matching-blocks",
    "--perceptual-blur", "--spectral-excess-weight", "--spectral-excess-margin", "--spectral-excess-finest",
    "--decoder-noise", "--decoder-refine", "--r1-weight",
)
MODEL_FILES = sorted([ENCODER_FILE, DECODER_FILE, CONFIG_FILE, SCHEMA_FILE, CARD_FILE])


cli = load_script(SCRIPT)


def tiny_args(tiny: SimpleNamespace, root: Path, *extra: str) -> list[str]:
    """A small run: its run dir and model under `root`."""
    return ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--classifier", str(tiny.classifier),
            "--run-dir", str(root / "run"), "--out", str(root / "out"), "--batch-size", "4", "--quiet", *extra]


def spoil(folder: Path) -> None:
    """Push the decoder's every pixel towards white: a generator far worse than a tiny run."""
    generator = Generator.load(folder)
    pixels = generator.decoder.get_layer("pixels")
    pixels.bias.assign(pixels.bias + 10.0)
    generator.save(folder)


def measured_val_loss(tiny: SimpleNamespace, out: Path) -> float:
    """The paper's loss of the saved model on the validation split, measured afresh (sampled codes)."""
    generator = Generator.load(out)
    dataset = load_dataset(tiny.data_dir, cache_dir=tiny.cache)
    rows = make_split("random", dataset, 42).validation
    if generator.arch == "paper":
        conditions = Labeler.load(tiny.classifier).scores(dataset.images[rows])
    else:
        conditions = generator.schema.encode_frame(dataset.styles.iloc[rows])
    return reconstruction_metrics(generator, dataset.images[rows], conditions)["val_loss"]


def run(tiny: SimpleNamespace, root: Path, *extra: str) -> SimpleNamespace:
    argv = tiny_args(tiny, root, *extra)
    return SimpleNamespace(code=cli.main(argv), argv=argv, out=root / "out", run=root / "run")


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    return {"conv": run(tiny, tmp_path_factory.mktemp("conv"), "--epochs", "2"),
            "paper": run(tiny, tmp_path_factory.mktemp("paper"), "--arch", "paper", "--epochs", "1")}


# ----------------------------------------------------------------------------- whole runs


@pytest.mark.parametrize("arch", ["conv", "paper"])
def test_run_writes_the_model_its_card_and_logs(runs, tiny, arch: str) -> None:
    result = runs[arch]
    assert result.code == 0
    # conv generates from a latent prior fitted after training; the paper's draws from N(0, I)
    assert sorted(p.name for p in result.out.iterdir()) == sorted(MODEL_FILES + [PRIOR_FILE] * (arch == "conv"))
    card = read_card(result.out)
    assert {"model", "arch", "command", "data", "split", "training", "metrics"} <= card.keys()
    assert card["model"] == "generator" and card["arch"] == arch
    assert card["command"] == shlex.join(["python", "scripts/train_generator.py", *result.argv])
    assert card["data"]["images"] == 11 and card["split"]["n_train"] + card["split"]["n_validation"] == 11
    epochs = 2 if arch == "conv" else 1
    assert card["training"]["epochs"] == epochs
    assert {len(values) for values in card["training"]["history"].values()} == {epochs}
    validation = card["metrics"]["validation"]
    assert isinstance(validation["val_loss"], float) and 0 <= validation["rounded_accuracy"] <= 1
    assert validation["val_loss"] == pytest.approx(validation["reconstruction_loss"] + validation["latent_loss"])
    assert validation["val_loss"] == pytest.approx(measured_val_loss(tiny, result.out), abs=0.02)
    assert list((result.run / "tensorboard").rglob("events.out.tfevents.*"))
    generator = Generator.load(result.out)
    assert generator.arch == arch and generator.card == card
    assert generator.schema == Labeler.load(tiny.classifier).schema
    assert generator.generate("Shoes", "Men", 0, 2).shape == (2, 80, 60, 3)
    if arch == "conv":
        # every training row but the Ties one (outside the schema), if the split put it in training
        n_train = card["split"]["n_train"]
        assert n_train - 1 <= card["latent_prior"]["images"] == generator.prior.counts.sum() <= n_train
    else:
        assert generator.prior is None and "latent_prior" not in card


# ----------------------------------------------------------------------------- the last good model


def test_a_better_model_in_out_is_kept_unless_replace(runs, tiny, tmp_path: Path, capsys) -> None:
    out = shutil.copytree(runs["conv"].out, tmp_path / "out")
    spoiled = shutil.copytree(runs["conv"].out, tmp_path / "spoiled")
    spoil(spoiled)
    before = folder_bytes(out)
    # a warm start from the spoiled copy at a negligible learning rate stays spoiled: worse than out's
    extra = ("--epochs", "1", "--init-from", str(spoiled), "--learning-rate", "1e-9")
    assert run(tiny, tmp_path, *extra).code == 0
    assert folder_bytes(out) == before
    kept = tmp_path / "run" / "model"
    line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("kept ")]
    numbers = re.fullmatch(rf"kept {re.escape(str(out))}: this run's model is not better \(this run's validation "
                           rf"loss ([0-9.]+), the model in {re.escape(str(out))} ([0-9.]+), on the same 1 validation "
                           rf"images\); this run's model is in {re.escape(str(kept))} \(--replace overwrites\)", line[0])
    new_loss, old_loss = float(numbers[1]), float(numbers[2])
    assert new_loss > old_loss + 1  # measured, not read from the cards
    assert old_loss == pytest.approx(measured_val_loss(tiny, out), abs=0.02)
    assert new_loss == pytest.approx(measured_val_loss(tiny, kept), abs=0.05)
    assert PRIOR_FILE in {p.name for p in kept.iterdir()}

    assert run(tiny, tmp_path, *extra, "--replace").code == 0
    assert "because of --replace" in capsys.readouterr().out
    assert read_card(out)["initialised_from"] == str(spoiled) and read_card(out)["command"].endswith("--replace")


def test_a_model_of_another_schema_in_out_needs_replace(runs, tiny, tmp_path: Path, capsys) -> None:
    out = shutil.copytree(runs["conv"].out, tmp_path / "out")
    schema = json.loads((out / SCHEMA_FILE).read_text())
    schema["genders"][0] = "Someone else"
    (out / SCHEMA_FILE).write_text(json.dumps(schema))
    before = folder_bytes(out)
    assert run(tiny, tmp_path, "--epochs", "1").code == 2  # before training: the run would be thrown away
    line = one_error_line(capsys.readouterr().err)
    assert "its label schema" in line and "pass --replace to overwrite it" in line
    assert folder_bytes(out) == before and not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- interrupt and resume


def test_interrupt_keeps_out_and_resume_finishes(runs, tiny, tmp_path: Path, monkeypatch, capsys) -> None:
    out = shutil.copytree(runs["conv"].out, tmp_path / "out")
    spoil(out)  # a worse model: the finished run replaces it
    before = folder_bytes(out)
    interrupted: dict[str, list[np.ndarray]] = {}

    def interrupt_second_epoch(self, epoch, logs=None):
        if epoch == 1:
            interrupted["weights"] = self.model.get_weights()  # what the backup after epoch 0 holds
            raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_begin", interrupt_second_epoch)
    assert run(tiny, tmp_path, "--epochs", "2").code == 130
    assert "--resume" in one_error_line(capsys.readouterr().err)
    assert folder_bytes(out) == before
    backup = tmp_path / "run" / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1

    # another recipe under this run's name is refused before a model is built, and loses nothing
    kept = folder_bytes(backup)
    assert run(tiny, tmp_path, "--epochs", "2", "--kl-weight", "0.5", "--resume").code == 2
    assert "--kl-weight was 1.0, now 0.5" in one_error_line(capsys.readouterr().err)
    assert folder_bytes(backup) == kept and folder_bytes(out) == before

    resumed: list[tuple[int, list[np.ndarray]]] = []
    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_begin",
                        lambda self, epoch, logs=None: resumed.append((epoch, self.model.get_weights())))
    assert run(tiny, tmp_path, "--epochs", "2", "--resume").code == 0
    assert "which is better" in capsys.readouterr().out
    assert [epoch for epoch, _ in resumed] == [1]  # epoch 0 is not trained again
    for restored, saved in zip(resumed[0][1], interrupted["weights"], strict=True):
        np.testing.assert_array_equal(restored, saved)  # weights, KL warm-up step count, sampling state
    card = read_card(out)
    assert card["command"].endswith("--resume")
    assert not backup.exists()


# ----------------------------------------------------------------------------- errors and help


def test_resume_with_nothing_to_resume_is_one_line(tiny, tmp_path: Path, capsys) -> None:
    assert run(tiny, tmp_path, "--resume").code == 2
    assert "nothing to resume" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_a_run_folder_another_live_run_holds_is_refused_in_one_line(tiny, tmp_path: Path, capsys) -> None:
    # two runs without --run-dir share runs/generator/<arch>: the second would clear the first's files
    with run_dir_held_by_another_process(tmp_path / "run"):
        (tmp_path / "run" / training.BEST_WEIGHTS).write_bytes(b"the other run's")
        assert run(tiny, tmp_path).code == 2
    assert "in use by another run" in one_error_line(capsys.readouterr().err)
    assert (tmp_path / "run" / training.BEST_WEIGHTS).read_bytes() == b"the other run's"
    assert not (tmp_path / "out").exists()
    # the other run gone (killed), this one runs, and lets go of the folder as it ends
    assert run(tiny, tmp_path, "--epochs", "1").code == 0
    fcntl = pytest.importorskip("fcntl")
    probe = os.open(tmp_path / "run" / training.RUN_LOCK, os.O_RDWR)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(probe)


def test_resume_that_toggles_a_decoder_flag_is_one_line(tiny, tmp_path: Path, capsys) -> None:
    # a plain run's record and an (empty) backup: refused before the data is loaded
    started = cli.parse_args(tiny_args(tiny, tmp_path, "--arch", "vaegan"))
    training.prepare_run_dir(started)
    (started.run_dir / "backup").mkdir()
    assert run(tiny, tmp_path, "--arch", "vaegan", "--decoder-refine", "--resume").code == 2
    assert "--decoder-refine was off, now on" in one_error_line(capsys.readouterr().err)
    assert not list((started.run_dir / "backup").iterdir()) and not (started.run_dir / training.BEST_WEIGHTS).exists()
    assert not (tmp_path / "out").exists()


def test_split_seed_keeps_the_validation_photos_of_another_seed(tiny, tmp_path: Path) -> None:
    labeler = Labeler.load(tiny.classifier)

    def validation(*flags: str) -> list[int]:
        return list(cli.load_data(cli.parse_args(tiny_args(tiny, tmp_path, *flags)), labeler).split.validation)

    assert validation("--seed", "5") != validation()  # the seed alone moves the split (it would hide the test)
    assert validation("--seed", "5", "--split-seed", "42") == validation()


def test_one_image_is_too_little_data_before_a_model_is_built(tiny, tmp_path: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    small = SimpleNamespace(**{**vars(tiny), "data_dir": make_tiny_dataset(tmp_path / "fashion-small")})
    keep_only(small.data_dir, (1,))

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr("fashiongen.generator.cvae.build_generator", no_model)
    assert run(small, tmp_path).code == 2
    assert "give 0 train and 1 validation images" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_missing_classifier_is_one_line_naming_the_file(tiny, tmp_path: Path, capsys) -> None:
    missing = SimpleNamespace(**{**vars(tiny), "classifier": tmp_path / "no-classifier"})
    assert run(missing, tmp_path).code == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path / "no-classifier" / MODEL_FILE) in line and "train_classifier.py" in line


def test_fine_tune_with_a_frozen_encoder_keeps_its_codes(runs, tiny, tmp_path: Path) -> None:
    """--init-from a generator with a prior, --freeze-encoder, a judge: the encoder (and so the prior's
    codes) is unchanged, the decoder learns, and the card says how it was made."""
    start = Generator.load(runs["conv"].out)
    judge = shutil.copytree(tiny.classifier, tmp_path / "judge")
    judge_command = "python scripts/train_classifier.py --split grouped"
    (judge / CARD_FILE).write_text(json.dumps({"command": judge_command}))
    result = run(tiny, tmp_path, "--epochs", "1", "--init-from", str(runs["conv"].out), "--freeze-encoder",
                 "--judge", str(judge), "--judge-weight", "1", "--judge-loss", "heads", "--learning-rate", "0.01",
                 "--replace")
    assert result.code == 0
    tuned = Generator.load(result.out)
    for before, after in zip(start.encoder.get_weights(), tuned.encoder.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(before, after)
               for before, after in zip(start.decoder.get_weights(), tuned.decoder.get_weights()))
    card = read_card(result.out)
    assert card["encoder_frozen"] is True and card["label_consistency_weight"] == 1.0
    assert card["label_consistency_loss"] == "heads"
    assert card["label_consistency_judge"] == str(judge)
    assert card["label_consistency_judge_command"] == judge_command
    assert card["initialised_from"] == str(runs["conv"].out)
    assert card["initialised_from_command"] == start.card["command"]


def test_freeze_encoder_without_init_from_is_one_line(tiny, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tiny_args(tiny, tmp_path, "--freeze-encoder"))
    assert exit_info.value.code == 2
    assert "--freeze-encoder needs --init-from" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (("--kl-weight", "0"), "--kl-weight must be above 0"),
    (("--arch", "paper", "--kl-weight", "0.5"), "--kl-weight works with --arch conv and vaegan"),
    (("--arch", "vaegan", "--perceptual-weight", "1"), "--perceptual-weight needs --arch vaegan and one of"),
    (("--arch", "vaegan", "--perceptual-weight", "1", "--perceptual-classifier", "x", "--perceptual-random"),
     "one of --perceptual-classifier and --perceptual-random"),
    (("--arch", "vaegan", "--perceptual-random"), "they need the weight"),
    (("--arch", "conv", "--perceptual-weight", "1", "--perceptual-classifier", "x"), "--perceptual-weight needs"),
    (("--arch", "vaegan", "--perceptual-classifier", "x"), "they need the weight"),
    (("--arch", "vaegan", "--perceptual-weight", "-1"), "cannot be negative"),
    (("--arch", "vaegan", "--adversarial-ramp-epochs", "-1"), "cannot be negative"),
    (("--arch", "vaegan", "--perceptual-blocks", "2"), "--perceptual-blocks needs --perceptual-weight"),
    (("--arch", "vaegan", "--perceptual-shift", "4"), "--perceptual-shift needs --perceptual-weight"),
    (("--arch", "vaegan", "--perceptual-weight", "1", "--perceptual-classifier", "x", "--perceptual-shift", "-1"),
     "--perceptual-shift cannot be negative"),
    (("--arch", "vaegan", "--perceptual-blur", "2"), "--perceptual-blur needs --perceptual-weight"),
    *((("--arch", "vaegan", "--perceptual-weight", "1", "--perceptual-classifier", "x", "--perceptual-blur", blur),
       "--perceptual-blur must be 0-8 pixels") for blur in ("-1", "nan", "9")),
    *((("--arch", "vaegan", "--spectral-excess-weight", weight), "--spectral-excess-weight must be a finite number")
      for weight in ("-1", "nan", "inf")),
    (("--arch", "conv", "--spectral-excess-weight", "1"), "--spectral-excess-weight needs --arch vaegan"),
    *((("--arch", "vaegan", "--r1-weight", weight), "--r1-weight must be a finite number") for weight in ("-1", "nan")),
    (("--arch", "paper", "--r1-weight", "1"), "--r1-weight needs --arch vaegan"),
    *((("--arch", "vaegan", flag, "1" if flag.endswith("margin") else "4"),
       "--spectral-excess-margin and --spectral-excess-finest need --spectral-excess-weight")
      for flag in ("--spectral-excess-margin", "--spectral-excess-finest")),
    *((("--arch", "vaegan", "--spectral-excess-weight", "1", "--spectral-excess-margin", margin),
       "--spectral-excess-margin must be a finite number") for margin in ("-1", "nan", "inf")),
    (("--arch", "vaegan", "--perceptual-weight", "1", "--perceptual-classifier", str(LABELER.shipped)),
     "must not be the shipped classifier"),
    (("--arch", "conv", "--decoder-noise"), "--decoder-noise needs --arch vaegan"),
    (("--arch", "paper", "--decoder-refine"), "--decoder-refine needs --arch vaegan"),
    (("--arch", "conv", "--decoder-noise", "--decoder-refine"), "--decoder-noise and --decoder-refine need --arch"),
])
def test_a_setting_it_cannot_use_is_one_line(tiny, tmp_path: Path, capsys, extra: tuple, message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tiny_args(tiny, tmp_path, *extra))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_copy_of_the_shipped_classifier_is_refused_as_the_perceptual_one(tiny, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(LABELER.shipped, copy)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tiny_args(tiny, tmp_path, "--arch", "vaegan", "--perceptual-weight", "1",
                           "--perceptual-classifier", str(copy)))
    assert exit_info.value.code == 2
    assert "must not be the shipped classifier" in capsys.readouterr().err
    assert not cli.is_shipped_classifier(tiny.classifier)  # another classifier's weights pass


@pytest.mark.parametrize("arch", ["conv", "vaegan"])
def test_the_kl_weight_reaches_the_model(tiny, tmp_path: Path, arch: str) -> None:
    import tensorflow as tf

    args = cli.parse_args(tiny_args(tiny, tmp_path, "--arch", arch, "--kl-weight", "0.1", "--kl-warmup-epochs", "0"))
    labeler = Labeler.load(tiny.classifier)
    model = cli.build_model(args, tf.distribute.get_strategy(), labeler, cli.load_data(args, labeler)).model
    assert float(model._kl_weight_now()) == pytest.approx(0.1)


@pytest.mark.parametrize(("blocks", "layers", "shift", "blur"),
                         [("4", COMPACT_LAYERS, "0", "0"), ("2", ("relu1_2", "relu2_2"), "8", "2")])
def test_the_perceptual_blocks_shift_and_blur_reach_the_model(tiny, tmp_path: Path, blocks: str, layers: tuple,
                                                              shift: str, blur: str) -> None:
    import tensorflow as tf

    args = cli.parse_args(tiny_args(tiny, tmp_path, "--arch", "vaegan", "--perceptual-weight", "1",
                                    "--perceptual-classifier", str(tiny.classifier), "--perceptual-blocks", blocks,
                                    "--perceptual-shift", shift, "--perceptual-blur", blur))
    labeler = Labeler.load(tiny.classifier)
    model = cli.build_model(args, tf.distribute.get_strategy(), labeler, cli.load_data(args, labeler)).model
    compared = [tuple(output.shape) for output in model.perceptual.features.outputs]
    assert compared == [tuple(labeler.model.get_layer(name).output.shape) for name in layers]
    assert model.perceptual.shift == int(shift)
    assert (model.perceptual.blur_taps is None) == (blur == "0")
    if blur != "0":  # a 2 px Gaussian cut at 3 sigma: 13 taps
        assert len(model.perceptual.blur_taps) == 13


@pytest.mark.parametrize(("weight", "margin", "finest"), [("0", "0", "2"), ("3", "0", "2"), ("3", "0.7", "4")])
def test_the_spectral_excess_weight_margin_and_band_reach_the_model(tiny, tmp_path: Path, weight: str,
                                                                    margin: str, finest: str) -> None:
    import tensorflow as tf

    args = cli.parse_args(tiny_args(tiny, tmp_path, "--arch", "vaegan", "--spectral-excess-weight", weight,
                                    "--spectral-excess-margin", margin, "--spectral-excess-finest", finest))
    labeler = Labeler.load(tiny.classifier)
    model = cli.build_model(args, tf.distribute.get_strategy(), labeler, cli.load_data(args, labeler)).model
    assert model.adversarial.spectral_excess_weight == float(weight)
    assert (model.spectral is None) == (weight == "0")
    if model.spectral is not None:
        assert model.spectral.margin == float(margin)
        # of 4,800 bins, 4,737 at periods up to 16 px, 1,208 of those at 4 px or more
        assert float(np.sum(np.asarray(model.spectral.band))) == (4737 if finest == "2" else 1208)


def test_random_perceptual_features_reach_the_model(tiny, tmp_path: Path) -> None:
    """--perceptual-random compares the random network's blocks, no classifier's, seeded by --seed."""
    import tensorflow as tf

    weights, reference = {}, random_features(0)
    for seed in ("1", "1", "2"):
        args = cli.parse_args(tiny_args(tiny, tmp_path, "--arch", "vaegan", "--perceptual-weight", "1",
                                        "--perceptual-random", "--perceptual-blocks", "3", "--seed", seed))
        labeler = Labeler.load(tiny.classifier)
        model = cli.build_model(args, tf.distribute.get_strategy(), labeler, cli.load_data(args, labeler)).model
        network = model.perceptual.features
        assert [tuple(output.shape) for output in network.outputs] == [
            tuple(reference.get_layer(name).output.shape) for name in COMPACT_LAYERS[:3]]
        assert not any("bn" in layer.name for layer in network.layers)  # not the tiny classifier's
        weights.setdefault(seed, []).append(network.get_layer("conv1_1").get_weights()[0])
    np.testing.assert_array_equal(*weights["1"])
    np.testing.assert_array_equal(weights["1"][0], random_features(1 + 2).get_layer("conv1_1").get_weights()[0])
    assert not np.allclose(weights["1"][0], weights["2"][0])


def test_help_mentions_every_flag(capsys) -> None:
    assert_help_mentions(cli.main, FLAGS, capsys)


# ----------------------------------------------------------------------------- distribution


def test_mirrored_strategy_on_two_cpu_devices(tiny, tmp_path: Path) -> None:
    run_in_fresh_process(SCRIPT, tiny_args(tiny, tmp_path, "--epochs", "1", "--strategy", "mirrored",
                                           "--cpu-devices", "2"))
    card = read_card(tmp_path / "out")
    assert "--strategy mirrored --cpu-devices 2" in card["command"]
    # the one validation image is split over 2 replicas, one holding only padding: the reported
    # loss is still the image's (a padding-only replica used to halve it)
    assert card["metrics"]["validation"]["val_loss"] == pytest.approx(measured_val_loss(tiny, tmp_path / "out"),
                                                                      abs=0.02)


def test_training_pairs_are_the_distinct_labelled_rows() -> None:
    shoes, bags = SCHEMA.encode("Shoes", "Women"), SCHEMA.encode("Bags", "Boys")
    outside = np.zeros(SCHEMA.size, np.float32)
    outside[len(SCHEMA.sub_categories)] = 1.0  # gender only: a sub-category outside the schema
    pairs = cli.training_pairs(np.stack([shoes, bags, shoes, outside, bags]), len(SCHEMA.sub_categories))
    assert sorted(map(tuple, pairs)) == sorted([tuple(shoes), tuple(bags)])


@pytest.mark.parametrize("flag", ["--out", "--run-dir"])
def test_an_unwritable_output_is_one_line_before_the_training(tmp_path: Path, capsys, monkeypatch, flag: str) -> None:
    nowhere = SimpleNamespace(data_dir=tmp_path / "data", cache=tmp_path / "cache", classifier=tmp_path / "labeler")
    assert_unwritable_output_stops_training(cli, tiny_args(nowhere, tmp_path), flag, tmp_path, capsys, monkeypatch)


def test_the_paper_arch_takes_a_catalog_labelers_first_25_scores(tiny, tmp_path: Path) -> None:
    """A catalog labeler scores more heads than the paper's two: the paper's CVAE is conditioned on
    the 25 scores of those two (all of them made a condition wider than its label schema)."""
    from fashiongen.labeler.model import build_classifier
    from fashiongen.schema import LabelSchema

    schema = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Blue", "Black")),))
    Labeler(build_classifier(schema), schema).save(tmp_path / "catalog")
    argv = tiny_args(tiny, tmp_path, "--arch", "paper", "--epochs", "1")
    argv[argv.index("--classifier") + 1] = str(tmp_path / "catalog")
    assert cli.main(argv) == 0
    generator = Generator.load(tmp_path / "out")
    assert generator.schema == SCHEMA and generator.decoder.inputs[1].shape[-1] == SCHEMA.size
