"""A run killed mid-training resumes where it stopped, losing at most one epoch."""

import csv
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from conftest import ROOT
import deeplabv3_plus as tutorial
from deeplab_support import UserError, cli, runs

EPOCHS = 4
TRAIN_IMAGES, BATCH = 12, 4


def command(toy_root, output_dir, *extra):
    """The tiny training run as a command line."""
    sizes = ["--image-size", 64, "--batch-size", BATCH, "--epochs", EPOCHS]
    sizes += ["--num-train-images", TRAIN_IMAGES, "--num-val-images", 4]
    folders = ["--data-dir", toy_root, "--output-dir", output_dir]
    script = [sys.executable, ROOT / "deeplabv3_plus.py"]
    return [str(a) for a in script + folders + sizes + ["--weights", "none", *extra]]


def wait_for_epoch(process, output_dir, epoch, timeout=300):
    """Poll the backup until the run has committed the given epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if runs.completed_epochs(output_dir) >= epoch:
                return
        except runs.UserError:  # read while the link moved: try again
            pass
        time.sleep(0.05)
    pytest.fail(f"no epoch was committed (exit code {process.poll()})")


def interrupt(command_line, output_dir, signum, env):
    """Start a run, signal it once it has committed an epoch; return epochs done."""
    done_before = runs.completed_epochs(output_dir)
    # The model summary alone would fill a pipe and stall the run: use a file.
    err_file = output_dir.parent / f"stderr-{signum}.txt"
    with open(os.devnull, "w") as out, open(err_file, "w") as errors:
        process = subprocess.Popen(command_line, env=env, stdout=out, stderr=errors)
        wait_for_epoch(process, output_dir, done_before + 1)
        process.send_signal(signum)
        process.wait(timeout=120)
    err = err_file.read_text()
    assert process.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert "--resume" in err
    return runs.completed_epochs(output_dir)


@pytest.mark.slow
def test_a_run_killed_twice_resumes_without_gaps_or_duplicates(toy_root, tmp_path):
    # PyTorch starts training without a compile wait, which keeps this test short;
    # the backup and signal logic is the same on every backend.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "torch"}
    output_dir = tmp_path / "out"
    first = interrupt(command(toy_root, output_dir), output_dir, signal.SIGTERM, env)
    assert 1 <= first < EPOCHS - 1
    resume = command(toy_root, output_dir, "--resume")
    second = interrupt(resume, output_dir, signal.SIGINT, env)  # Ctrl-C
    assert first < second < EPOCHS
    resumed = subprocess.run(
        resume, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"after epoch {second}" in resumed.stdout
    with open(output_dir / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == list(range(EPOCHS))  # each epoch exactly once, from 0
    model = keras.saving.load_model(output_dir / "model.keras")
    # The optimizer's step counter carried over: every step ran exactly once.
    assert int(model.optimizer.iterations) == EPOCHS * TRAIN_IMAGES // BATCH


@pytest.mark.slow
def test_sigterm_in_the_first_epoch_says_nothing_was_saved(toy_root, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "torch"}
    output_dir = tmp_path / "out"
    errors = tmp_path / "stderr.txt"
    with open(os.devnull, "w") as out, open(errors, "w") as err:
        process = subprocess.Popen(
            command(toy_root, output_dir), env=env, stdout=out, stderr=err
        )
        deadline = time.monotonic() + 300
        while not (output_dir / runs.RUN_FILE).exists():  # written just before fit
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    message = errors.read_text()
    assert process.returncode == 130 and "Traceback" not in message, message[-2000:]
    assert "nothing was saved" in message and "--overwrite" in message
    assert runs.completed_epochs(output_dir) == 0


@pytest.mark.slow
def test_training_and_resume_need_no_fcntl_and_no_links(toy_root, tmp_path):
    script = ROOT / "tests" / "scripts" / "without_posix.py"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "torch"}
    env["PYTHONPATH"] = str(ROOT)
    output_dir = tmp_path / "out"
    for extra in [["--epochs", "1"], ["--resume", "--epochs", "2"]]:
        flags = command(toy_root, output_dir, *extra)[2:]  # the tutorial's flags
        done = subprocess.run(
            [sys.executable, str(script), *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert runs.completed_epochs(output_dir) == 2
    assert not [p for p in output_dir.iterdir() if p.is_symlink()]


def stopped_run(output_dir, **config):
    """A run folder that stopped after epoch 1 of 3, with these settings."""
    output_dir.mkdir()
    config = {k: None for k in runs.RUN_CONFIG} | {"epochs": 3} | config
    names = runs.OUTPUT_NAMES + ["backup-001"]
    runs.write_run_file(output_dir, {"config": config, "files": names, "pids": [9]})
    (output_dir / "backup-001").mkdir()
    (output_dir / "backup-001" / runs.BACKUP_WEIGHTS).write_bytes(b"weights")
    (output_dir / runs.BACKUP_FILE).write_text('{"epoch": 1, "folder": "backup-001"}')
    return output_dir


def resume(output_dir, *flags):
    """Parse `--resume` with these flags and take over the stopped run."""
    argv = ["--output-dir", str(output_dir), "--resume", *flags]
    args = cli.parse_args(tutorial.DEFAULTS, argv)
    runs.prepare_resume(args)
    return args


def test_resume_takes_the_run_s_settings_and_says_which(tmp_path, capsys):
    output_dir = stopped_run(tmp_path / "run", image_size=96, learning_rate=0.002)
    args = resume(output_dir, "--image-size", "96")  # the same value: no conflict
    assert (args.image_size, args.learning_rate, args.epochs) == (96, 0.002, 3)
    said = capsys.readouterr().out
    assert "after epoch 1 of 3, with image_size 96, learning_rate 0.002" in said


def test_resume_refuses_a_flag_that_conflicts_with_the_run(tmp_path):
    output_dir = stopped_run(tmp_path / "run", image_size=96)
    with pytest.raises(UserError) as error:
        resume(output_dir, "--image-size", "128")
    message = str(error.value)
    assert "--image-size 128 conflicts" in message and "--image-size 96" in message
    assert "--overwrite" in message


def test_resume_may_extend_the_run_with_more_epochs(tmp_path):
    assert resume(stopped_run(tmp_path / "run"), "--epochs", "5").epochs == 5
