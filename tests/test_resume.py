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

from conftest import ROOT

EPOCHS = 3
TRAIN_IMAGES, BATCH = 12, 4


def command(toy_root, output_dir, *extra):
    """The tiny training run as a command line."""
    return [
        sys.executable, str(ROOT / "deeplabv3_plus.py"), "--data-dir", str(toy_root),
        "--output-dir", str(output_dir), "--image-size", "64", "--batch-size",
        str(BATCH), "--epochs", str(EPOCHS), "--num-train-images", str(TRAIN_IMAGES),
        "--num-val-images", "4", "--weights", "none", *extra,
    ]  # fmt: skip


def wait_for_first_epoch(process, state_file, timeout=300):
    """Poll until the run has committed its first epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if (
            state_file.exists()
            and json.loads(state_file.read_text())["completed_epochs"]
        ):
            return
        time.sleep(0.05)
    pytest.fail(f"no epoch was committed: {process.communicate()[1][-2000:]}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_killed_run_resumes_without_gaps_or_duplicates(toy_root, tmp_path, signum):
    output_dir, env = tmp_path / "out", {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        command(toy_root, output_dir), env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_first_epoch(process, output_dir / "training_state.json")
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err
    assert "--resume" in err
    stopped_after = json.loads((output_dir / "training_state.json").read_text())
    assert 1 <= stopped_after["completed_epochs"] < EPOCHS
    resumed = subprocess.run(
        command(toy_root, output_dir, "--resume"), env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"after epoch {stopped_after['completed_epochs']}" in resumed.stdout
    with open(output_dir / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2, 3]
    model = keras.saving.load_model(output_dir / "model.keras")
    # The optimizer's step counter carried over: every step ran exactly once.
    assert int(model.optimizer.iterations) == EPOCHS * TRAIN_IMAGES // BATCH
