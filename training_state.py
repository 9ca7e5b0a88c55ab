"""Checkpoints that survive crashes: atomic writes, resume, Ctrl-C and SIGTERM.

After every epoch the run commits, in this order: the full model with its optimizer
state to `checkpoints/epoch-NNN.keras`, then `training_state.json` naming it. The
state file is the commit point, so a crash at any moment leaves either the previous
epoch or the new one, never a mix. `model.keras`, `best_model.keras` and
`history.csv` follow, each written to a temporary file and moved into place.
"""

import csv
import json
import math
import os
import signal
import shutil
from contextlib import contextmanager
from pathlib import Path

import keras

from checks import UserError, check_output_dir

STATE_FILE = "training_state.json"


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; training stopped."""


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; move it into place only on success."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, data):
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_history_csv(path, history):
    """Write one row per epoch, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def copy_file(source, target):
    """Place a copy (a hard link where possible) of `source` at `target`."""
    with atomic_path(target) as tmp:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


@contextmanager
def signals_deferred():
    """Hold SIGINT and SIGTERM until the block ends, so commits are never cut."""
    received = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda n, f: received.append(n)) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            raise KeyboardInterrupt


def interrupt_on_sigterm():
    """Treat SIGTERM (sent by job schedulers) like Ctrl-C."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def load_state(output_dir):
    """Return the saved training state of `output_dir`, or None."""
    path = Path(output_dir) / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


class RunCheckpoint(keras.callbacks.Callback):
    """Commit model, best model, history and state after every finite epoch."""

    def __init__(self, output_dir, state, monitor="val_mean_iou"):
        super().__init__()
        self.output_dir, self.state, self.monitor = Path(output_dir), state, monitor

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            epoch = self.state["completed_epochs"] + 1
            raise NonFiniteLoss(
                f"the loss became {loss} at epoch {epoch}, batch {batch}"
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if not all(math.isfinite(v) for v in logs.values()):
            raise NonFiniteLoss(
                f"a metric became non-finite at epoch {epoch + 1}: {logs}"
            )
        with signals_deferred():
            self.commit(epoch + 1, logs)

    def commit(self, epoch, logs):
        """Write this epoch's checkpoint, then the state file that names it."""
        checkpoint = self.output_dir / "checkpoints" / f"epoch-{epoch:03d}.keras"
        checkpoint.parent.mkdir(exist_ok=True)
        with atomic_path(checkpoint) as tmp:
            self.model.save(tmp)
        state = self.state
        state["history"].append({"epoch": epoch, **logs})
        improved = logs.get(self.monitor, -math.inf) > state.get("best", -math.inf)
        if improved:
            state["best"], state["best_epoch"] = logs[self.monitor], epoch
        state["completed_epochs"], state["checkpoint"] = epoch, str(checkpoint.name)
        write_json(self.output_dir / STATE_FILE, state)
        for old in checkpoint.parent.glob("epoch-*.keras"):
            if old != checkpoint:
                old.unlink()
        copy_file(checkpoint, self.output_dir / "model.keras")
        if improved:
            copy_file(checkpoint, self.output_dir / "best_model.keras")
        write_history_csv(self.output_dir / "history.csv", state["history"])


def start_or_resume(args):
    """Load the state to resume, or make sure no earlier run gets overwritten."""
    output_dir = check_output_dir(args.output_dir, create=False)
    state = load_state(output_dir) if output_dir.is_dir() else None
    if args.resume:
        if state is None:
            raise UserError(
                f"nothing to resume: {output_dir} holds no "
                f"{STATE_FILE}; run again without --resume"
            )
        vars(args).update({k: state["config"][k] for k in RUN_CONFIG})
        if not args.epochs_given:  # keep the interrupted run's length
            args.epochs = state["config"]["epochs"]
        print(f"Resuming {output_dir} after epoch {state['completed_epochs']}.")
        return state
    if (state or (output_dir / "model.keras").exists()) and not args.overwrite:
        raise UserError(
            f"{output_dir} already holds a run; add --resume to continue it, "
            "--overwrite to replace it, or choose another --output-dir"
        )
    return {"completed_epochs": 0, "history": [], "train_seconds": 0.0}


# Settings that an interrupted run keeps when resumed (--epochs may extend it).
RUN_CONFIG = ["data_dir", "image_size", "batch_size", "num_train_images",
              "num_val_images", "learning_rate", "lr_schedule", "augment", "cache",
              "seed", "quick", "weights", "precision"]  # fmt: skip
