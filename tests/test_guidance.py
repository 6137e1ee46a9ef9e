"""The judge-guided latent prior (fashiongen/generator/refine.py and LatentPrior.refined): its arithmetic,
that refining moves codes to where the judge agrees with the requested labels and that the KL
weight holds it back, the script's --judge flags, and the shipped generator's refined prior."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import N_SUB, REPO, load_script, one_error_line, synthetic_codes

from fashiongen.errors import GeneratorError
from fashiongen.generator.generator import DECODER_FILE, ENCODER_FILE, Generator
from fashiongen.generator.prior import PRIOR_FILE, LatentPrior
from fashiongen.generator.refine import RefinementConfig, drawn_conditions, refine_prior
from fashiongen.labeler.labeler import Labeler
from fashiongen.model_folder import CARD_FILE, GENERATOR, GENERATOR_VARIANTS

FIT_PRIOR = REPO / "scripts" / "fit_generator_prior.py"
SMOOTH = next(variant.folder for variant in GENERATOR_VARIANTS if variant.name == "smooth")
fit_cli = load_script(FIT_PRIOR)


def fitted_prior() -> LatentPrior:
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(0))
    return LatentPrior.fit(codes, conditions, N_SUB)


def test_refined_codes_are_mean_plus_scale_times_the_shifted_stretched_noise() -> None:
    prior = fitted_prior()
    rng = np.random.default_rng(1)
    shift, log_stretch = rng.normal(size=prior.means.shape), rng.normal(scale=0.3, size=prior.means.shape)
    refined = prior.refined(shift, log_stretch)
    noise = rng.standard_normal((len(prior.conditions), prior.means.shape[1]))
    expected = prior.means + np.einsum("pij,pj->pi", prior.scales, shift + np.exp(log_stretch) * noise)
    np.testing.assert_allclose(refined.sample(prior.conditions, noise), expected, rtol=1e-4, atol=1e-4)
    assert np.allclose(np.triu(refined.scales, k=1), 0.0)  # still Cholesky factors
    np.testing.assert_array_equal(refined.counts, prior.counts)
    zero = prior.refined(np.zeros_like(prior.means), np.zeros_like(prior.means))
    np.testing.assert_allclose(zero.sample(prior.conditions, noise), prior.sample(prior.conditions, noise), atol=1e-5)
    with pytest.raises(ValueError, match="shift and log_stretch must be"):
        prior.refined(shift[:, :2], log_stretch)


@pytest.fixture(scope="module")
def shipped():
    """The shipped `smooth` generator and the classifier: a real decoder and a real judge of the
    same labels (no colour), with no data needed."""
    return Generator.load(SMOOTH), Labeler.load()


def judge_of(labeler: Labeler) -> keras.Model:
    return labeler.as_judge(labeler.schema)


def judge_loss(generator: Generator, prior: LatentPrior, labeler: Labeler, loss: str) -> float:
    """The judge's loss on 4 fixed draws per pair (not the refinement's draws)."""
    rows = np.repeat(prior.conditions, 4, axis=0)
    noise = np.random.default_rng(123).standard_normal((len(rows), prior.means.shape[1])).astype(np.float32)
    images = generator.decoder.predict_on_batch([prior.sample(rows, noise), rows])
    scores = np.clip(np.asarray(labeler.model.predict_on_batch(images), np.float64), 1e-7, 1 - 1e-7)
    if loss == "bce":
        return float(-np.mean(rows * np.log(scores) + (1 - rows) * np.log(1 - scores)))
    heads = np.split(np.arange(prior.conditions.shape[1]), [len(generator.schema.sub_categories)])
    return float(sum(-np.mean(np.sum(rows[:, h] * np.log(scores[:, h] / scores[:, h].sum(1, keepdims=True)), 1))
                     for h in heads))


@pytest.mark.parametrize("loss", ["bce", "heads"])
def test_refining_lowers_the_judges_loss_and_leaves_the_generator_alone(shipped, loss: str) -> None:
    generator, labeler = shipped
    decoder_weights = [w.copy() for w in generator.decoder.get_weights()]
    fitted = generator.prior
    refined, summary = refine_prior(generator, judge_of(labeler),
                                    RefinementConfig(steps=30, batch_size=32, kl_weight=0.0,
                                                     learning_rate=0.05, loss=loss))
    assert judge_loss(generator, refined, labeler, loss) < 0.9 * judge_loss(generator, fitted, labeler, loss)
    assert summary["steps"] == 30 and summary["loss"] == loss and summary["kl_per_pair_mean"] > 0
    assert generator.prior is fitted  # the caller decides whether to keep the refined one
    assert all(np.array_equal(a, b) for a, b in zip(decoder_weights, generator.decoder.get_weights()))
    # trainable again, as before: the refinement freezes them only while it runs
    assert len(generator.decoder.trainable_weights) == len(generator.decoder.weights) - 8  # 4 BN's moving stats
    assert labeler.model.trainable_weights and generator.decoder.trainable


def test_without_stretch_only_the_centres_move(shipped) -> None:
    generator, labeler = shipped
    fitted = generator.prior
    for stretch in (False, True):
        refined, summary = refine_prior(generator, judge_of(labeler),
                                        RefinementConfig(steps=5, batch_size=32, learning_rate=0.05, stretch=stretch))
        assert not np.allclose(refined.means, fitted.means)
        assert np.array_equal(refined.scales, fitted.scales) != stretch
        assert (summary["stretch_mean"] == 1.0) != stretch


def test_the_kl_weight_keeps_the_refined_prior_near_the_fitted_one(shipped) -> None:
    generator, labeler = shipped
    free = refine_prior(generator, judge_of(labeler),
                        RefinementConfig(steps=10, batch_size=32, kl_weight=0.0,
                                         learning_rate=0.05, kl_by_count=False))[1]
    held = refine_prior(generator, judge_of(labeler),
                        RefinementConfig(steps=10, batch_size=32, kl_weight=100.0,
                                         learning_rate=0.05, kl_by_count=False))[1]
    assert free["kl_per_pair_mean"] > 0
    assert held["kl_per_pair_mean"] < free["kl_per_pair_mean"] / 5, (held, free)


def test_weighted_by_count_rare_pairs_move_further_than_common_ones(shipped) -> None:
    generator, labeler = shipped
    counts = generator.prior.counts
    rare, common = counts <= np.quantile(counts, 0.25), counts >= np.quantile(counts, 0.75)
    for by_count in (False, True):
        refined = refine_prior(generator, judge_of(labeler),
                               RefinementConfig(steps=10, batch_size=64, kl_weight=1.0,
                                                learning_rate=0.05, kl_by_count=by_count))[0]
        whitened = np.linalg.solve(generator.prior.scales, (refined.means - generator.prior.means)[..., None])[..., 0]
        moved = np.linalg.norm(whitened, axis=1)
        ratio = moved[rare].mean() / moved[common].mean()
        assert (ratio > 3) == by_count, (by_count, ratio)


def test_refining_needs_a_prior_a_matching_judge_and_sane_settings(shipped) -> None:
    generator, labeler = shipped
    without = Generator(generator.encoder, generator.decoder, generator.schema, "conv")
    with pytest.raises(GeneratorError, match="needs a fitted latent prior"):
        refine_prior(without, judge_of(labeler))
    narrow = keras.Model(labeler.model.input, labeler.model.output[:, :3])
    with pytest.raises(GeneratorError, match="scores 3 labels"):
        refine_prior(generator, narrow)
    with pytest.raises(GeneratorError, match="at least 1"):
        refine_prior(generator, judge_of(labeler), RefinementConfig(steps=0))
    with pytest.raises(GeneratorError, match="valid: bce, heads"):
        refine_prior(generator, judge_of(labeler), RefinementConfig(loss="mse"))
    with pytest.raises(GeneratorError, match="colour weight other than 1 needs colour judged"):
        refine_prior(generator, judge_of(labeler), RefinementConfig(colour_weight=0.5))
    with pytest.raises(GeneratorError, match="colour weight must be above 0"):
        refine_prior(generator, judge_of(labeler), RefinementConfig(colour_weight=0))


def test_a_classifier_of_another_schema_is_no_judge(shipped) -> None:
    from test_vae import SCHEMA  # the tiny test schema, not the shipped one

    from fashiongen.errors import ClassifierError

    with pytest.raises(ClassifierError, match="the judge somewhere uses another label schema"):
        shipped[1].as_judge(SCHEMA, "somewhere")


# ----------------------------------------------------------------------------- fit_generator_prior.py --judge


def fit_argv(tiny, folder: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder), "--quiet",
            *extra]


def test_script_refines_against_the_judge_and_saves_what_it_refined(models, tiny, tmp_path: Path, capsys,
                                                                      monkeypatch) -> None:
    """The flags reach refine_prior, and the prior it returns is the one saved. (Whether refining
    moves the codes is tested above with the shipped models: a one-epoch tiny classifier may
    give the judge no gradient at all.)"""
    calls = []
    real_refine = refine_prior

    def spy(*args, **kwargs):
        calls.append((args, kwargs, real_refine(*args, **kwargs)))
        return calls[-1][2]

    monkeypatch.setattr(fit_cli, "refine_prior", spy)
    folder = shutil.copytree(models.conv, tmp_path / "judged")
    keras_files = {name: (folder / name).read_bytes() for name in (ENCODER_FILE, DECODER_FILE)}
    argv = fit_argv(tiny, folder, "--judge", str(tiny.classifier), "--judge-steps", "3", "--judge-batch-size", "4",
                    "--judge-learning-rate", "0.1", "--judge-kl-weight", "0.5", "--judge-loss", "heads",
                    "--judge-stretch", "--no-judge-kl-by-count", "--judge-seed", "9")
    assert fit_cli.main(argv) == 0
    assert f"refined against {tiny.classifier}" in capsys.readouterr().out
    [(args, kwargs, (refined, summary))] = calls
    assert args[2] == RefinementConfig(steps=3, batch_size=4, kl_weight=0.5, learning_rate=0.1, loss="heads",
                                       stretch=True, kl_by_count=False, seed=9)
    assert kwargs == {"verbose": 0}
    assert args[1].output_shape[-1] == args[0].schema.size  # the judge: the tiny classifier's scores
    saved = Generator.load(folder).prior
    np.testing.assert_array_equal(saved.means, refined.means)
    np.testing.assert_array_equal(saved.scales, refined.scales)
    assert keras_files == {name: (folder / name).read_bytes() for name in keras_files}
    card = json.loads((folder / CARD_FILE).read_text())["latent_prior"]
    assert card["judge_refinement"] == json.loads(json.dumps({"judge": str(tiny.classifier),
                                                              "judge_command": Labeler.load(tiny.classifier).card.get(
                                                                  "command"), **summary}))
    assert "--judge-stretch" in card["command"]


def test_script_with_a_missing_judge_is_one_line_and_keeps_the_prior(models, tiny, tmp_path: Path,
                                                                      capsys) -> None:
    folder = shutil.copytree(models.conv, tmp_path / "conv")
    before = (folder / PRIOR_FILE).read_bytes()
    assert fit_cli.main(fit_argv(tiny, folder, "--judge", str(tmp_path / "no-judge"))) == 2
    assert "no-judge" in one_error_line(capsys.readouterr().err)
    assert (folder / PRIOR_FILE).read_bytes() == before


@pytest.mark.parametrize("flag, value", [("--judge-steps", "0"), ("--judge-kl-weight", "-1"),
                                         ("--judge-learning-rate", "0")])
def test_script_refuses_nonsense_settings(flag: str, value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fit_cli.parse_args(["--judge", "x", flag, value])
    assert exit_info.value.code == 2 and flag in capsys.readouterr().err


# ----------------------------------------------------------------------------- the shipped generator


@pytest.mark.parametrize("folder", [GENERATOR.shipped, SMOOTH], ids=["default", "smooth"])
def test_shipped_refined_prior_beats_the_fitted_one_for_the_shipped_classifier(shared_data: Path, shipped,
                                                                               folder: Path) -> None:
    """Each shipped prior is refined (its card says with which judge), and the shipped classifier,
    which was not the judge, labels its images right more often than those of the prior refitted
    from the training photos: about 600 images, the same seeds for each of its keys (label pairs;
    keyed by colour, a thousand keys, one seed each)."""
    from fashiongen.dataset import load_dataset
    from fashiongen.splits import make_split

    generator, labeler = Generator.load(folder), shipped[1]
    refinement = generator.card["latent_prior"].get("judge_refinement")
    assert refinement, "the shipped prior is not refined"
    assert "pretrained" not in refinement["judge"]  # the shipped classifier evaluates, so it must not judge
    dataset = load_dataset(shared_data)
    split = make_split(generator.card["split"]["kind"], dataset, int(generator.card["split"]["seed"]))
    rows = split.train
    refitted = Generator(generator.encoder, generator.decoder, generator.schema, generator.arch)
    refitted.fit_prior(dataset.images[rows], generator.schema.encode_frame(dataset.styles.iloc[rows]),
                       by_colour=generator.prior.keyed_by_colour,
                       colour_shrinkage=generator.card["latent_prior"].get("colour_shrinkage", 0.0))
    hits = {}
    for name, candidate in (("refined", generator), ("fitted", refitted)):
        n_keys = len(candidate.prior.conditions)
        seeds = max(1, 600 // n_keys)  # the margins are 0.1 or more: more images only cost minutes
        keys = np.tile(np.arange(n_keys), seeds)  # seed-major, as the noise
        pair_rows = drawn_conditions(candidate.prior, keys, generator.schema.size, np.random.default_rng(0))
        noise = np.concatenate([generator.codes(seed, n_keys) for seed in range(seeds)])
        scores = labeler.scores(candidate.decode(candidate.prior.sample(pair_rows, noise), pair_rows))
        wanted_sub, wanted_gender = generator.schema.split_scores(pair_rows)
        sub, gender = generator.schema.split_scores(scores)
        hits[name] = (np.mean(sub.argmax(1) == wanted_sub.argmax(1)),
                      np.mean(gender.argmax(1) == wanted_gender.argmax(1)))
    assert hits["refined"][0] >= hits["fitted"][0] + 0.03 and hits["refined"][1] >= hits["fitted"][1] + 0.03, hits
