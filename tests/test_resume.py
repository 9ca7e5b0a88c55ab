"""A run killed mid-training resumes where it stopped, losing at most one epoch."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

import deeplabv3_plus  # noqa: F401  registers AtrousConv2D for load_model
from conftest import ROOT

EPOCHS = 4
TRAIN_IMAGES, BATCH = 12, 4


def command(toy_root, output_dir, *extra):
    """The tiny training run as a command line."""
    return [
        sys.executable, str(ROOT / "deeplabv3_plus.py"), "--data-dir", str(toy_root),
        "--output-dir", str(output_dir), "--image-size", "64", "--batch-size",
        str(BATCH), "--epochs", str(EPOCHS), "--num-train-images", str(TRAIN_IMAGES),
        "--num-val-images", "4", "--weights", "none", *extra,
    ]  # fmt: skip


def wait_for_epoch(process, state_file, epoch, timeout=300):
    """Poll until the run has committed the given epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if committed(state_file) >= epoch:
            return
        time.sleep(0.05)
    pytest.fail(f"no epoch was committed: {process.communicate()[1][-2000:]}")


def committed(state_file):
    """How many epochs a run has committed so far."""
    if not state_file.exists():
        return 0
    return json.loads(state_file.read_text())["completed_epochs"]


def interrupt(command_line, output_dir, signum, env):
    """Start a run, signal it once it has committed an epoch; return the state."""
    state_file = output_dir / "training_state.json"
    done_before = committed(state_file)
    process = subprocess.Popen(
        command_line, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    wait_for_epoch(process, state_file, done_before + 1)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err
    assert "--resume" in err
    return json.loads(state_file.read_text())


def test_a_run_killed_twice_resumes_without_gaps_or_duplicates(toy_root, tmp_path):
    # PyTorch starts training without a compile wait, which keeps this test short;
    # the checkpoint and signal logic is the same on every backend.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "torch"}
    output_dir = tmp_path / "out"
    first = interrupt(command(toy_root, output_dir), output_dir, signal.SIGTERM, env)
    assert 1 <= first["completed_epochs"] < EPOCHS - 1
    resume = command(toy_root, output_dir, "--resume")
    second = interrupt(resume, output_dir, signal.SIGINT, env)  # Ctrl-C
    assert first["completed_epochs"] < second["completed_epochs"] < EPOCHS
    resumed = subprocess.run(
        resume, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"after epoch {second['completed_epochs']}" in resumed.stdout
    with open(output_dir / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(
            range(1, EPOCHS + 1)
        )
    model = keras.saving.load_model(output_dir / "model.keras")
    # The optimizer's step counter carried over: every step ran exactly once.
    assert int(model.optimizer.iterations) == EPOCHS * TRAIN_IMAGES // BATCH
