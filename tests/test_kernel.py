"""The latent prior's residual kernel (fashiongen/generator/kernel.py): fitting, drawing by a
choice, what LatentPrior.sample and Generator.latents make of it, saving, and
scripts/fit_prior_kernel.py on the tiny dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_help_mentions
from helpers import (
    LATENT,
    N_SUB,
    REPO,
    SCHEMA,
    condition,
    load_script,
    one_error_line,
    random_photos_of_three_pairs,
    synthetic_codes,
)

from fashiongen.errors import GeneratorError
from fashiongen.generator.cvae import build_generator
from fashiongen.generator.generator import Generator
from fashiongen.generator.kernel import LEVELS, RARE_FROM_PAIR, ResidualKernel
from fashiongen.generator.prior import PRIOR_FILE, LatentPrior

cli = load_script(REPO / "scripts" / "fit_prior_kernel.py")


def fitted() -> tuple[LatentPrior, np.ndarray, np.ndarray]:
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(0))
    prior = LatentPrior.fit(codes, conditions, N_SUB)
    return prior, codes, conditions


def test_residuals_are_each_code_minus_its_keys_mean_to_within_one_step() -> None:
    prior, codes, conditions = fitted()
    _, keys = prior._pairs_of(conditions)
    kernel = ResidualKernel.fit(codes, keys, 0.3)
    known = keys >= 0
    assert len(kernel.keys) == known.sum() and np.all(np.diff(kernel.keys) >= 0)  # outside rows left out
    order = np.argsort(keys[known], kind="stable")
    expected = codes[known][order] - prior.means[keys[known][order]]  # the fitted means are the keys' own
    restored = kernel.residuals.astype(np.float64) * kernel.step
    assert kernel.residuals.dtype == np.int8 and np.abs(kernel.residuals).max() == LEVELS
    assert np.all(np.abs(restored - expected) <= 0.5 * kernel.step + 1e-4)


def test_a_choice_picks_one_of_its_keys_residuals_and_unknown_keys_get_none() -> None:
    kernel = ResidualKernel(np.array([[1], [2], [3], [10]], np.int8), np.array([0.5], np.float32),
                            np.array([0, 0, 0, 2]), 0.3, min_photos=1)
    residuals, has = kernel.draw(np.array([0, 0, 0, 0, 1, 2, -1]), np.array([0.0, 0.34, 0.67, 0.999, 0.5, 0.5, 0.5]))
    np.testing.assert_array_equal(has, [True, True, True, True, False, True, False])
    np.testing.assert_allclose(residuals[:, 0], [0.5, 1.0, 1.5, 1.5, 0.0, 5.0, 0.0])


def test_keys_with_fewer_photos_than_the_minimum_draw_from_their_gaussian() -> None:
    """One photo's residual is 0: every seed would draw the same code (a reviewer measured 16 seeds of
    a one-photo key at a third of the Gaussian's pixel spread), so such keys keep the Gaussian."""
    kernel = ResidualKernel(np.array([[1], [2], [3], [10]], np.int8), np.array([0.5], np.float32),
                            np.array([0, 0, 0, 2]), 0.3, min_photos=3)
    _, has = kernel.draw(np.array([0, 2]), np.array([0.5, 0.5]))
    np.testing.assert_array_equal(has, [True, False])
    with pytest.raises(ValueError, match="2 keys but 1 choices"):
        kernel.draw(np.array([0, 2]), np.array([0.5]))


def test_rare_keys_can_draw_from_any_photo_of_their_pair() -> None:
    """Keys 0 and 2 are two colours of pair 0, key 1 alone in pair 1 (pairs need not follow the
    keys' order); keys 1 and 2 have one photo each, under the minimum of 2. With rare_from_pair,
    key 2 draws among the three photos of pair 0 (photos 0, 1 and 3); key 1's pair has too few
    too, so it keeps the Gaussian; a key with enough photos, and a kernel without the flag or
    without the pairs, draws as before."""
    residuals, step = np.array([[1], [2], [3], [10]], np.int8), np.array([0.5], np.float32)
    keys, pair_of_key = np.array([0, 0, 1, 2]), np.array([0, 1, 0])
    rows, choice = np.array([2, 2, 2, 1, 0]), np.array([0.1, 0.5, 0.9, 0.5, 0.9])
    pooled = ResidualKernel(residuals, step, keys, 0.3, min_photos=2, rare_from_pair=True)
    drawn, has = pooled.draw(rows, choice, pair_of_key)
    np.testing.assert_array_equal(has, [True, True, True, False, True])
    np.testing.assert_allclose(drawn[:, 0], [0.5, 1.0, 5.0, 0.0, 1.0])
    for kernel, pairs in ((pooled, None), (ResidualKernel(residuals, step, keys, 0.3, min_photos=2), pair_of_key)):
        drawn, has = kernel.draw(rows, choice, pairs)
        np.testing.assert_array_equal(has, [False, False, False, False, True])


def test_a_stretched_prior_still_knows_each_keys_pair() -> None:
    """refined() with a stretch gives every key its own spread (scale_of_key then names keys, not
    pairs); the kernel's rare keys must still find their pair."""
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(0))
    prior = LatentPrior.fit(codes, conditions, N_SUB)
    stretched = prior.refined(np.zeros_like(prior.means), np.full_like(prior.means, 0.1))
    np.testing.assert_array_equal(stretched.pair_of_key, prior.pair_of_key)
    assert len(np.unique(stretched.scale_of_key)) == len(stretched.means)


def test_a_saved_kernel_keeps_its_rare_key_choice_and_older_files_keep_the_gaussian(tmp_path: Path) -> None:
    prior, codes, conditions = fitted()
    _, keys = prior._pairs_of(conditions)
    for rare_from_pair in (True, False):
        kernel = ResidualKernel.fit(codes, keys, 0.3, rare_from_pair=rare_from_pair)
        prior.with_kernel(kernel).save(tmp_path / PRIOR_FILE)
        assert LatentPrior.load(tmp_path / PRIOR_FILE).kernel.rare_from_pair is rare_from_pair
    with np.load(tmp_path / PRIOR_FILE) as saved:
        older = {name: saved[name] for name in saved.files if name != "kernel_rare_from_pair"}
    np.savez(tmp_path / PRIOR_FILE, **older)
    assert LatentPrior.load(tmp_path / PRIOR_FILE).kernel.rare_from_pair is False


def test_with_a_choice_a_code_is_centre_plus_residual_plus_the_kernels_share_of_the_spread() -> None:
    prior, codes, conditions = fitted()
    _, keys = prior._pairs_of(conditions)
    kernel = ResidualKernel.fit(codes, keys, 0.3)
    with_kernel = prior.with_kernel(kernel)
    rows = np.stack([condition("Bags", "Boys"), condition("Topwear", "Men"), condition("Topwear", "Girls")])
    noise = np.random.default_rng(1).standard_normal((3, LATENT)).astype(np.float32)
    choice = np.array([0.2, 0.9, 0.5])
    drawn = with_kernel.sample(rows, noise, choice)
    _, row_keys = prior._pairs_of(rows)
    residuals, _ = kernel.draw(row_keys, choice)
    gaussian = prior.sample(rows, noise)
    spread = gaussian - prior.centres(rows)
    np.testing.assert_allclose(drawn[:2], (prior.centres(rows) + residuals + 0.3 * spread)[:2], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(drawn[2], gaussian[2], rtol=1e-6)  # Topwear-Girls was never seen: the Gaussian
    np.testing.assert_array_equal(with_kernel.sample(rows, noise), gaussian)  # no choice: the Gaussian too
    np.testing.assert_array_equal(with_kernel.with_colours(conditions).kernel.residuals, kernel.residuals)
    np.testing.assert_array_equal(with_kernel.with_kernel(None).sample(rows, noise, choice), gaussian)


def test_a_refined_prior_keeps_its_kernel_around_the_moved_centres() -> None:
    prior, codes, conditions = fitted()
    _, keys = prior._pairs_of(conditions)
    with_kernel = prior.with_kernel(ResidualKernel.fit(codes, keys, 0.3))
    shift = np.zeros_like(prior.means)
    shift[:, 0] = 1.0
    refined = with_kernel.refined(shift, np.zeros_like(prior.means))
    rows = np.repeat(condition("Bags", "Boys")[None], 2, axis=0)
    noise = np.zeros((2, LATENT), np.float32)
    moved = refined.sample(rows, noise, np.array([0.1, 0.6])) - with_kernel.sample(rows, noise, np.array([0.1, 0.6]))
    np.testing.assert_allclose(moved, np.repeat(refined.centres(rows[:1]) - prior.centres(rows[:1]), 2, axis=0),
                               atol=1e-4)


@pytest.fixture(scope="module")
def generator_with_kernel(tmp_path_factory: pytest.TempPathFactory):
    """An untrained conv generator with a prior fitted on random images, saved without a kernel and
    with one."""
    model = build_generator("conv", SCHEMA.size, latent_dim=16)
    generator = Generator(model.encoder, model.decoder, SCHEMA, "conv",
                          {"model": "generator", "arch": "conv", "latent_prior": {"fitted_on": "random images"}})
    images, conditions = random_photos_of_three_pairs()
    generator.fit_prior(images, conditions, batch_size=8)
    plain_prior = generator.prior
    root = tmp_path_factory.mktemp("with-kernel")
    generator.save(root / "plain")
    generator.fit_kernel(images, conditions, 0.3)
    generator.save(root / "model")
    return generator, root / "model", plain_prior


def test_the_seed_chooses_the_residuals_so_the_same_seed_gives_the_same_pixels(generator_with_kernel) -> None:
    generator, folder, plain_prior = generator_with_kernel
    loaded = Generator.load(folder)
    assert loaded.prior.kernel is not None
    np.testing.assert_array_equal(loaded.prior.kernel.residuals, generator.prior.kernel.residuals)
    np.testing.assert_array_equal(loaded.generate("Bags", "Men", 7, 4), generator.generate("Bags", "Men", 7, 4))
    rows = np.repeat(condition("Bags", "Men")[None], 4, axis=0)
    assert not np.allclose(generator.latents(rows, 7), plain_prior.sample(rows, generator.codes(7, 4)))
    assert not np.allclose(generator.latents(rows, 7), generator.latents(rows, 8))


def test_a_kernel_of_another_latent_size_is_refused(generator_with_kernel, tmp_path: Path) -> None:
    folder = shutil.copytree(generator_with_kernel[1], tmp_path / "model")
    with np.load(folder / PRIOR_FILE) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays["kernel_residuals"] = arrays["kernel_residuals"][:, :8]
    np.savez(folder / PRIOR_FILE, **arrays)
    with pytest.raises(GeneratorError, match="kernel residuals"):
        Generator.load(folder)


def test_the_script_gives_a_generators_prior_a_kernel_of_its_training_photos(generator_with_kernel, tiny,
                                                                            tmp_path: Path, capsys) -> None:
    folder = shutil.copytree(generator_with_kernel[1].parent / "plain", tmp_path / "model")
    before = Generator.load(folder)
    assert before.prior.kernel is None
    assert cli.main(["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder),
                     "--spread", "0.2"]) == 0
    after = Generator.load(folder)
    np.testing.assert_array_equal(after.prior.means, before.prior.means)  # the Gaussians stay
    assert after.prior.kernel.spread == 0.2 and 0 < len(after.prior.kernel.keys)
    assert after.prior.kernel.rare_from_pair is RARE_FROM_PAIR
    card = json.loads((folder / "model_card.json").read_text())
    assert card["latent_prior"]["kernel"]["photos"] == len(after.prior.kernel.keys)
    assert "--spread 0.2" in card["latent_prior"]["kernel"]["command"]
    assert set(before.card.get("latent_prior", {})) < set(card["latent_prior"])  # the Gaussians' entry stays
    assert "kernel" in capsys.readouterr().out
    assert cli.main(["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder),
                     "--rare-keys", "pair"]) == 0
    assert Generator.load(folder).prior.kernel.rare_from_pair is True
    # refitting the Gaussians loses the kernel (its residuals are the old keys'), and says so
    refit = load_script(REPO / "scripts" / "fit_generator_prior.py")
    assert refit.main(["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder)]) == 0
    assert Generator.load(folder).prior.kernel is None
    assert "fit_prior_kernel.py" in capsys.readouterr().out


def test_the_script_refuses_a_generator_without_a_prior_in_one_line(tiny, tmp_path: Path, capsys) -> None:
    folder = shutil.copytree(REPO / "fashiongen" / "pretrained" / "generator-paper", tmp_path / "paper")
    assert cli.main(["--data-dir", str(tiny.data_dir), "--generator", str(folder)]) == 2
    assert "no latent prior" in one_error_line(capsys.readouterr().err)


def test_help_names_every_flag(capsys) -> None:
    flags = ["--data-dir", "--generator", "--spread", "--min-photos", "--rare-keys", "--cache-dir"]
    assert_help_mentions(cli.main, flags, capsys)


@pytest.mark.parametrize("flags", [["--spread", "-1"], ["--spread", "nan"], ["--min-photos", "0"]])
def test_a_wrong_spread_or_minimum_is_refused_before_any_work(flags, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(flags)
    assert exited.value.code == 2 and "must be" in capsys.readouterr().err
