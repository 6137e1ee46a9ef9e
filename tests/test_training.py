"""What the training scripts share: the best-weights checkpoint keeps its bar across --resume."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from helpers import run_dir_held_by_another_process

from fashiongen import training


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


class Interrupt(keras.callbacks.Callback):
    """Ctrl-C at the end of an epoch, after the checkpoint and the resume backup were written."""

    def __init__(self, after_epoch: int) -> None:
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 == self.after_epoch:
            raise KeyboardInterrupt


def fit(model: keras.Model, run_dir: Path, best: Path, epochs: int, interrupt_after: int | None = None) -> None:
    x = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    extra = [Interrupt(interrupt_after)] if interrupt_after else []
    model.fit(x, y, validation_data=(x, y), epochs=epochs, verbose=0,
              callbacks=training.standard_callbacks(run_dir, best) + extra)


def test_best_value_is_recorded_and_a_resumed_run_must_beat_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    best = training.prepare_run_dir(training.TrainingConfig(run_dir=run_dir))
    model = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        fit(model, run_dir, best, epochs=4, interrupt_after=2)
    record = json.loads((run_dir / training.BEST_RECORD).read_text())
    assert record["monitor"] == "val_loss" and record["epoch"] == 2 and record["best"] > 0
    # pretend the interrupted run had reached a loss nothing will beat: resuming must keep its weights
    (run_dir / training.BEST_RECORD).write_text(json.dumps({"monitor": "val_loss", "best": 0.0, "epoch": 2}))
    before = best.read_bytes()
    best = training.prepare_run_dir(training.TrainingConfig(run_dir=run_dir, resume=True))
    fit(model, run_dir, best, epochs=4)
    assert best.read_bytes() == before
    assert json.loads((run_dir / training.BEST_RECORD).read_text())["best"] == 0.0


def test_a_new_run_forgets_the_old_record(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    best = training.prepare_run_dir(training.TrainingConfig(run_dir=run_dir))
    fit(tiny_model(), run_dir, best, epochs=1)
    (run_dir / training.BEST_RECORD).write_text(json.dumps({"monitor": "val_loss", "best": 0.0, "epoch": 1}))
    best = training.prepare_run_dir(training.TrainingConfig(run_dir=run_dir))
    assert not (run_dir / training.BEST_RECORD).exists() and not best.exists()
    fit(tiny_model(), run_dir, best, epochs=1)
    assert best.is_file() and json.loads((run_dir / training.BEST_RECORD).read_text())["best"] > 0


@dataclass
class TeacherConfig(training.TrainingConfig):
    teacher: Path | None = None  # a folder that shapes what the run learns, as --init-from does


def test_resume_refuses_other_settings_and_allows_a_longer_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    started = TeacherConfig(run_dir=run_dir, epochs=2, seed=3, teacher=Path("teacher"))
    training.prepare_run_dir(started)
    (run_dir / "backup").mkdir()

    def resume(**changes) -> None:
        training.check_resume(replace(started, resume=True, **changes))

    with pytest.raises(training.TrainingError, match="--batch-size was 64, now 32; --seed was 3, now 4"):
        resume(seed=4, batch_size=32)
    with pytest.raises(training.TrainingError, match="--teacher was .*teacher, now .*other"):
        resume(teacher=Path("other"))
    resume(epochs=5, quiet=True, strategy="mirrored", teacher=tmp_path / "teacher")  # longer; the same folder
    assert (run_dir / "backup").is_dir()  # neither the refusals nor the check touched the progress
    record = run_dir / training.RUN_SETTINGS
    record.write_text(json.dumps({key: value for key, value in json.loads(record.read_text()).items()
                                  if key not in ("batch_size", "teacher")}))
    # flags added after the run started: it ran with their defaults; a default of None cannot be told
    resume(batch_size=64, teacher=Path("other"))
    with pytest.raises(training.TrainingError, match="--batch-size was 64, now 32"):
        resume(batch_size=32)
    for unreadable in ("[1]", "{"):
        record.write_text(unreadable)  # or a run started before settings were recorded
        resume(seed=4)
    record.unlink()
    resume(seed=4)
    with pytest.raises(training.TrainingError, match="nothing to resume"):
        training.check_resume(replace(started, run_dir=tmp_path / "elsewhere", resume=True))


def test_a_run_folder_is_held_by_one_live_run_at_a_time(tmp_path: Path) -> None:
    """Another live process's lock is refused, naming it, and left alone; once that process is
    gone the folder is free; this process may take its own again, and lets go of it."""
    fcntl = pytest.importorskip("fcntl")  # Windows: runs are not locked
    config = SimpleNamespace(run_dir=tmp_path / "run")
    lock = tmp_path / "run" / training.RUN_LOCK
    with run_dir_held_by_another_process(config.run_dir) as pid:
        with pytest.raises(training.TrainingError, match=rf"in use by another run \(process {pid} on a test\)"):
            training.lock_run_dir(config)
        assert lock.read_text() == f"process {pid} on a test"
    training.lock_run_dir(config)  # its process is gone, killed: so is its lock
    assert lock.read_text().startswith(f"process {os.getpid()} on ")
    training.lock_run_dir(config)  # this process's own
    probe = os.open(lock, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        training.release_run_dir(config)
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free now
    finally:
        os.close(probe)


def test_a_filesystem_without_locks_leaves_the_run_unlocked(tmp_path: Path, monkeypatch) -> None:
    fcntl = pytest.importorskip("fcntl")

    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    config = SimpleNamespace(run_dir=tmp_path / "run")
    training.lock_run_dir(config)  # no traceback: the run goes on, as before there were locks
    assert config.run_dir.resolve() not in training._HELD
