"""What the training scripts share: distribution strategy, run folder, callbacks, model-card facts."""

from __future__ import annotations

import hashlib
import shlex
import shutil
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from fashiongen.data import FashionData, Split


class TrainingError(RuntimeError):
    """A training run that cannot start as asked; the message says what to do instead."""


def make_strategy(name: str, cpu_devices: int | None = None):
    """`default` (one device: the GPU when TensorFlow sees one), `mirrored` (all local GPUs, else
    the logical CPUs) or `multiworker` (the machines in TF_CONFIG)."""
    import tensorflow as tf

    if cpu_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        except RuntimeError as error:  # TensorFlow already ran something in this process
            raise TrainingError(f"--cpu-devices must be set before TensorFlow starts ({error}); "
                                "run the script in a fresh process") from None
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "default":
        raise TrainingError(f"unknown strategy {name!r}; valid: default, mirrored, multiworker")
    return tf.distribute.get_strategy()


BEST_WEIGHTS = "best.weights.h5"


def prepare_run_dir(run_dir: Path, resume: bool) -> Path:
    """Make the run folder and return where its best weights go. A new run clears the resume
    backup and the old best weights (it must never end with an older run's weights)."""
    backup_dir, best_weights = run_dir / "backup", run_dir / BEST_WEIGHTS
    if resume and not backup_dir.is_dir():
        raise TrainingError(f"nothing to resume in {run_dir}: run without --resume")
    if not resume:
        shutil.rmtree(backup_dir, ignore_errors=True)
        best_weights.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return best_weights


def load_best_weights(model: keras.Model, best_weights: Path, out: Path) -> None:
    if not best_weights.is_file():  # ModelCheckpoint saves nothing while val_loss is NaN
        raise TrainingError(f"no epoch reached a finite validation loss, so {out} is unchanged; "
                            "try a lower --learning-rate")
    model.load_weights(best_weights)


def standard_callbacks(run_dir: Path, best_weights: Path, monitor: str = "val_loss") -> list[keras.callbacks.Callback]:
    """Resume backup after every epoch, best weights by `monitor` (lower is better), TensorBoard logs."""
    return [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(best_weights), monitor=monitor, mode="min", save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
    ]


def card_basics(kind: str, arch: str, argv: list[str], data_dir: Path, dataset: FashionData, split: Split,
                train_rows: np.ndarray) -> dict:
    """The model card's common part: what, when, the command, the data and the exact split."""
    val_ids = dataset.styles["id"].to_numpy()[split.validation]
    return {
        "model": kind,
        "arch": arch,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", f"scripts/train_{kind}.py", *argv]),
        "data": {
            "dataset": "paramaggarwal/fashion-product-images-small",
            "images": int(len(dataset.images)),
            "styles_rows_without_image": len(dataset.missing_ids),
            "styles_csv_sha256": hashlib.sha256((Path(data_dir) / "styles.csv").read_bytes()).hexdigest(),
        },
        "split": {
            **split.report(dataset.digests), "n_train_used": int(len(train_rows)),
            "validation_ids_sha256": hashlib.sha256(",".join(map(str, sorted(val_ids))).encode()).hexdigest(),
        },
        "versions": {"keras": keras.__version__, "numpy": np.__version__},
    }


def rounded_history(history: keras.callbacks.History) -> dict[str, list[float]]:
    return {key: [round(float(v), 5) for v in values] for key, values in history.history.items()}
