"""A run killed mid-training resumes where it stopped, losing at most one epoch."""

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from tensorflow.errors import ResourceExhaustedError

import deeplabv3_plus as dl
from conftest import ROOT, fails_with, fake_run, optimizer_steps, resume_args
from conftest import parse, run_args, run_python, run_tutorial, subprocess_env
from deeplab_support import UserError, card, cli, datasets, runs
from deeplab_support.classes import CIHP

EPOCHS = 3
TRAIN_IMAGES, BATCH = 12, 4
# Runs the tutorial as on Windows, and can make it signal itself mid-epoch.
WRAPPER = ROOT / "tests" / "scripts" / "without_posix.py"


def command(toy_root, output_dir, *extra):
    """The tiny training run as a command line, run as on Windows."""
    sizes = ["--epochs", EPOCHS, "--batch-size", BATCH]
    sizes += ["--num-train-images", TRAIN_IMAGES]
    flags = run_args(toy_root, output_dir, *sizes, *extra)
    return [str(a) for a in [sys.executable, WRAPPER, *flags]]


def stopped(command_line, output_dir, epoch, signum):
    """Run until it signals itself in this epoch; return its stderr."""
    # PyTorch starts training without a compile wait, which keeps this short; the
    # backup and signal logic is the same on every backend.
    env = subprocess_env(KERAS_BACKEND="torch", PYTHONPATH=str(ROOT))
    env["STOP_IN_EPOCH"] = f"{epoch}:{signum.name}"
    # The model summary alone would fill a pipe and stall the run: use a file.
    err_file = output_dir.parent / f"stderr-{signum.name}.txt"
    with open(os.devnull, "w") as out, open(err_file, "w") as errors:
        process = subprocess.run(
            command_line, env=env, stdout=out, stderr=errors, timeout=600
        )
    err = err_file.read_text()
    assert process.returncode == 130 and "Traceback" not in err, err[-2000:]
    return err


@pytest.fixture(scope="module")
def killed_twice(toy_root, tmp_path_factory):
    """Its folder, epochs kept and names listed at two stops mid-epoch, and the
    final resume's stdout; no run of it sees fcntl or symbolic links."""
    output_dir = tmp_path_factory.mktemp("killed") / "out"
    start = command(toy_root, output_dir)
    assert "--resume" in stopped(start, output_dir, 2, signal.SIGTERM)
    first = runs.completed_epochs(output_dir)  # a scheduler stopped it
    listed = set(runs.read_run_file(output_dir)["files"])
    resume = command(toy_root, output_dir, "--resume")
    assert "--resume" in stopped(resume, output_dir, 3, signal.SIGINT)
    second = runs.completed_epochs(output_dir)  # Ctrl-C stopped it
    resumed = run_python(*resume[1:], timeout=600, KERAS_BACKEND="torch")
    return output_dir, first, second, listed, resumed.stdout


@pytest.mark.slow
def test_a_run_killed_twice_resumes_without_gaps_or_duplicates(killed_twice):
    output_dir, first, second, _, stdout = killed_twice
    assert (first, second) == (1, 2)  # each stop lost only its unfinished epoch
    assert f"after epoch {second}" in stdout
    with open(output_dir / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == list(range(EPOCHS))  # each epoch exactly once, from 0
    assert [p.name for p in output_dir.glob("backup-*")] == [f"backup-{EPOCHS:03d}"]
    # The optimizer's step counter carried over: every step ran exactly once.
    assert optimizer_steps(output_dir) == EPOCHS * TRAIN_IMAGES // BATCH


@pytest.mark.slow
def test_training_and_resume_need_no_fcntl_and_no_links(killed_twice):
    output_dir = killed_twice[0]  # every run of it saw no fcntl and no links
    assert runs.completed_epochs(output_dir) == EPOCHS
    assert (output_dir / "model.keras").is_file()
    assert not [p for p in output_dir.iterdir() if p.is_symlink()]


@pytest.mark.slow
def test_a_stopped_run_leaves_the_names_it_never_wrote_to_the_user(killed_twice):
    listed = killed_twice[3]  # at the first stop, in epoch 2
    assert {"backup.json", "history.csv", "best_model.keras"} <= listed
    assert "metrics.json" not in listed and "model.keras" not in listed


@pytest.mark.slow
def test_sigterm_in_the_first_epoch_says_nothing_was_saved(toy_root, tmp_path):
    output_dir = tmp_path / "out"
    message = stopped(command(toy_root, output_dir), output_dir, 1, signal.SIGTERM)
    assert "nothing is kept" in message and "--overwrite" in message
    assert runs.completed_epochs(output_dir) == 0


def test_resume_takes_the_run_s_settings_and_says_which(tmp_path, capsys):
    taken = dict(image_size=96, learning_rate=0.002, freeze_backbone=True)
    taken |= dict(class_map="map.txt", loss="dice", keep_aspect=True)
    output_dir = fake_run(tmp_path / "run", 1, **taken)
    args = resume_args(output_dir, "--image-size", "96")  # the same: no conflict
    runs.prepare_resume(args)
    assert {name: vars(args)[name] for name in taken} == taken and args.epochs == 3
    said = capsys.readouterr().out
    assert "after epoch 1 of 3, with image_size 96, learning_rate 0.002" in said


CONFLICT = "--image-size 128 conflicts .*has --image-size 96; .*--overwrite"


@pytest.mark.parametrize(
    "damage, flags, phrase",
    [
        ("", ["--image-size", "128"], CONFLICT),
        ("", ["--overwrite"], "pass one of them"),
        ("", ["--epochs", "1"], "already completed 2 epochs"),
        ("record", [], "backup record .* is damaged.*--overwrite"),
        ("weights", [], "model.weights.h5 is missing"),
    ],
    ids=["conflicting-flag", "and-overwrite", "fewer-epochs", "record", "weights"],
)
def test_resume_refuses_what_it_cannot_go_on_with(tmp_path, damage, flags, phrase):
    out = fake_run(tmp_path, 2, saved_weights=damage != "weights", image_size=96)
    if damage == "record":
        (out / runs.BACKUP_FILE).write_text('{"epo')  # truncated
    with pytest.raises(UserError, match=phrase):
        runs.prepare_resume(resume_args(out, *flags))


SETTINGS = [dict(image_size="64"), dict(batch_size=-4), dict(learning_rate="fast")]
SETTINGS += [dict(lr_schedule="bogus"), dict(seed=None), dict(augment="yes")]
SETTINGS += [dict(epochs="3"), dict(epochs=None)]


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_resume_refuses_a_setting_of_run_json_that_its_flag_refuses(
    capsys, tmp_path, setting
):
    config = {k: v for k, v in dl.DEFAULTS.items() if k in runs.RUN_CONFIG}
    config |= dict(quick=False, tensorboard=False)
    args = resume_args(fake_run(tmp_path / "run", 1, **config))
    runs.prepare_resume(args)
    cli.check_restored(args)  # what a run writes, its flags take
    out = fake_run(tmp_path / "out", 1, **config | setting)
    flag = "--" + next(iter(setting)).replace("_", "-")
    fails_with(capsys, ["--resume", "--output-dir", out], f"run.json holds {flag}")


def test_resume_finishes_a_run_stopped_after_its_last_epoch(tmp_path):
    out = fake_run(tmp_path / "out", 3, epochs=3)
    runs.prepare_resume(resume_args(out))  # no report yet: it writes the model and it
    (out / card.CARD).write_text("the report, written last")
    with pytest.raises(UserError, match="already completed 3 epochs"):
        runs.prepare_resume(resume_args(out))


def test_resume_names_a_readme_of_the_user_s_in_a_run_stopped_before_its_report(
    tmp_path,
):
    out = fake_run(tmp_path / "out", 3, epochs=3)
    data = runs.read_run_file(out)
    data["files"].remove(card.CARD)  # unlisted: the run stopped before writing it
    runs.write_run_file(out, data)
    (out / card.CARD).write_text("the user's notes")
    with pytest.raises(UserError, match="README.md was not made by this project"):
        runs.prepare_resume(resume_args(out))


def test_a_resume_that_trains_no_epoch_reports_no_speed(tmp_path):
    run = runs.Run(resume_args(out := fake_run(tmp_path / "out", 3)), out)  # batch 4
    assert run.timing(10) == dict(train_seconds=None, images_per_second=None)
    run.seconds = [9.0, 2.0, 4.0]  # the first epoch compiles: its time is left out
    assert run.timing(10) == dict(train_seconds=15.0, images_per_second=2.67)


def test_resume_may_extend_the_run_with_more_epochs_and_keeps_them(tmp_path):
    args = resume_args(fake_run(tmp_path / "run", 1), epochs=5)
    runs.prepare_resume(args)
    runs.open_run(args)
    assert args.epochs == 5
    runs.prepare_resume(args := resume_args(tmp_path / "run"))  # stopped again
    assert args.epochs == 5


@pytest.mark.parametrize("poisoned", ["training", "validation"])
def test_a_nan_loss_stops_at_once_and_keeps_the_last_good_epoch(tmp_path, poisoned):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    dl.compile_model(model, keras.optimizers.Adam(), 3)  # the tutorial's metrics
    run = runs.Run(SimpleNamespace(batch_size=2, epochs=2, tensorboard=False), tmp_path)
    runs.claim(tmp_path, runs.run_names(run.args))  # as open_run does
    good = np.ones((8, 4), "float32"), np.zeros((8,), "int32")
    fit = dict(validation_data=good, batch_size=2, verbose=0)
    model.fit(*good, epochs=1, callbacks=run.callbacks(CIHP), **fit)
    nan = np.full((8, 4), np.nan, "float32"), good[1]
    # NaN in validation alone: as weights that a wild learning rate spoilt predict
    train, fit["validation_data"] = (
        (nan, good) if poisoned == "training" else (good, nan)
    )
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        model.fit(*train, epochs=2, callbacks=run.callbacks(CIHP), **fit)
    assert runs.completed_epochs(tmp_path) == 1
    assert [row["epoch"] for row in runs.read_history(tmp_path)] == ["0"]
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert np.isfinite(restored.predict_on_batch(good[0])).all()


def test_a_backup_whose_optimizer_state_does_not_fit_is_refused(tmp_path):
    # As a mixed_float16 run's loss-scale optimizer on another backend: Keras would
    # skip the optimizer's state with a warning and start Adam afresh.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    dl.compile_model(model, keras.optimizers.Adam(), 3)
    (tmp_path / "backup-001").mkdir()
    model.save_weights(tmp_path / "backup-001" / runs.BACKUP_WEIGHTS)
    (tmp_path / runs.BACKUP_FILE).write_text('{"epoch": 1, "folder": "backup-001"}')
    dl.compile_model(model, keras.optimizers.SGD(momentum=0.9), 3)  # fewer slots
    backup = runs.Backup(tmp_path, CIHP, best=-1.0)
    backup.set_model(model)
    with pytest.raises(UserError, match="backup-001.* does not fit this run"):
        backup.on_train_begin()


def test_no_callback_of_a_run_makes_each_training_step_wait_for_the_last(tmp_path):
    # Keras runs steps ahead on JAX and PyTorch only while every callback either
    # has no per-batch hook or is marked async_safe.
    run = runs.Run(SimpleNamespace(batch_size=2, epochs=2, tensorboard=False), tmp_path)
    base = keras.callbacks.Callback
    for callback in run.callbacks(CIHP):
        hooks = [type(callback).on_batch_end, type(callback).on_train_batch_end]
        per_batch = hooks != [base.on_batch_end, base.on_train_batch_end]
        assert not per_batch or getattr(callback, "async_safe", False), callback


def test_resume_without_a_run_is_an_error(capsys, toy_root, tmp_path):
    argv = run_args(toy_root, tmp_path / "out", "--resume")
    fails_with(capsys, argv, "nothing to resume")


@pytest.mark.slow
def test_resumed_poly_schedule_keeps_learning_in_the_extra_epochs(toy_root, tmp_path):
    output_dir = tmp_path / "out"
    run_tutorial(*run_args(toy_root, output_dir, "--lr-schedule", "poly"))
    before = keras.saving.load_model(output_dir / "model.keras")
    run_tutorial(*run_args(toy_root, output_dir, "--resume", "--epochs", "2"))
    after = keras.saving.load_model(output_dir / "model.keras")
    steps = 8 // 4  # training images // batch size
    assert optimizer_steps(output_dir) == 2 * steps
    # The learning rate decays over the new total, so the extension still learns
    # (a rate left at 0 would move BatchNorm's statistics only).
    pairs = zip(before.trainable_weights, after.trainable_weights)
    moved = [not np.allclose(a.numpy(), b.numpy()) for a, b in pairs]
    assert sum(moved) > len(moved) // 2


@pytest.mark.slow
def test_a_resumed_run_trains_as_an_uninterrupted_one(toy_root, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    steps = ["--steps-per-execution", "3"]  # more than an epoch's 2 steps, as on a GPU
    run_tutorial(*run_args(toy_root, whole, "--epochs", "2", *steps))
    run_tutorial(*run_args(toy_root, resumed, *steps))  # stopped after epoch 1 ...
    run_tutorial(*run_args(toy_root, resumed, "--resume", "--epochs", "2", *steps))
    # ... and the second epoch saw the same order and augmentation all the same.
    assert optimizer_steps(whole) == optimizer_steps(resumed) == 2 * 8 // 4
    for a, b in zip(runs.read_history(whole), runs.read_history(resumed), strict=True):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([float(a[k]) for k in a], [float(b[k]) for k in a])


LOWER = "at --image-size 512 and --batch-size 4; lower --batch-size or --image-size"
OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate"  # JAX's words


@pytest.mark.parametrize("done", [0, 2])
@pytest.mark.parametrize(
    "error, phrase",
    [
        (RuntimeError("NaN or Inf loss encountered at batch 1. Stopping."), "NaN"),
        (OSError(errno.ENOSPC, "No space left on device"), "the disk holding"),
        (MemoryError(), LOWER),
        (ResourceExhaustedError(None, None, "OOM when allocating tensor"), LOWER),
        (RuntimeError(OOM), LOWER),
    ],
    ids=["nan", "disk full", "numpy memory", "tensorflow memory", "jax memory"],
)
def test_a_failed_run_says_why_which_epoch_it_kept_and_how_to_go_on(
    capsys, tmp_path, error, phrase, done
):
    output_dir = fake_run(tmp_path / "my out", epochs_done=done)
    assert cli.explain(error, parse("--output-dir", output_dir)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and phrase in err and "\n" not in err
    if done:  # a command to paste, the folder's name quoted
        assert "last good epoch (2)" in err
        assert f"--resume --output-dir '{output_dir}'" in err
    else:
        assert "nothing is kept" in err and "last good" not in err


def test_overwrite_recovers_from_a_damaged_backup(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1, saved_weights=False)
    (output_dir / runs.BACKUP_FILE).write_text("{")
    args = resume_args(output_dir, resume=False, overwrite=True)
    runs.prepare_resume(args)
    runs.open_run(args)
    assert runs.completed_epochs(output_dir) == 0
    assert sorted(p.name for p in output_dir.iterdir()) == [runs.RUN_FILE]


def test_a_resume_cleans_what_a_killed_run_left_and_nothing_else(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    (output_dir / ".tmp-999-model.keras").write_text("half")  # pid 999 is recorded
    (output_dir / ".tmp-999-notes.txt").write_text("the user's")  # not a listed name
    (output_dir / "backup-002").mkdir()  # listed in the manifest, never committed
    runs.open_run(resume_args(output_dir))
    kept = {".tmp-999-notes.txt", "backup-001", runs.BACKUP_FILE, runs.RUN_FILE}
    assert {p.name for p in output_dir.iterdir()} == kept


@pytest.mark.slow
def test_resume_needs_no_weights_file_once_a_backup_holds_the_weights(
    tiny_run, toy_root, tmp_path
):
    start = shutil.copy(tiny_run / "model.keras", tmp_path / "start.keras")
    run_tutorial(*run_args(toy_root, tmp_path / "out", "--weights", start))
    os.remove(start)  # moved, or deleted by an --overwrite of the folder it was in
    run_tutorial("--resume", "--epochs", 2, "--output-dir", tmp_path / "out")
    assert runs.completed_epochs(tmp_path / "out") == 2


def test_resume_finds_the_run_s_paths_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cihp").mkdir()
    runs.open_run(parse("--data-dir", "cihp", "--output-dir", "out"))
    assert runs.read_run_file("out")["config"]["data_dir"] == str(tmp_path / "cihp")
    monkeypatch.chdir(tmp_path / "cihp")
    args = resume_args(tmp_path / "out", "--data-dir", "../cihp/")  # spelt anew
    runs.prepare_resume(args)
    assert args.data_dir == str(tmp_path / "cihp")


def test_ctrl_c_inside_tensorflow_s_code_is_an_interruption(capsys, tmp_path):
    error = RuntimeError(
        "pybind11::error_already_set: MISMATCH of original and normalized active "
        "exception types: ORIGINAL InvalidArgumentError REPLACED BY KeyboardInterrupt"
    )
    assert cli.explain(error, parse("--output-dir", tmp_path)) == 130
    assert capsys.readouterr().err.startswith("\nInterrupted. No epoch was completed")


def test_resume_reads_the_data_set_the_run_found(toy_root, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DATA_DIR", tmp_path / "cihp")  # none yet
    args = parse("--output-dir", tmp_path / "out", "--num-train-images", 8)
    data = datasets.get_dataset(args, lambda root, num_images, progress: toy_root)
    runs.open_run(args, data.root)  # without --data-dir: the synthetic set
    shutil.copytree(toy_root, tmp_path / "cihp")  # CIHP arrives before the resume
    runs.prepare_resume(args := resume_args(tmp_path / "out"))
    assert datasets.get_dataset(args, None).root == toy_root


def test_ctrl_c_while_tensorflow_loads_is_an_interruption(tmp_path):
    loading = tmp_path / "tensorflow"  # a TensorFlow whose import is interrupted
    loading.mkdir()
    (loading / "__init__.py").write_text("raise KeyboardInterrupt")
    path = os.pathsep.join([str(tmp_path), str(ROOT)])
    result = run_python(ROOT / "deeplabv3_plus.py", exit_code=130, PYTHONPATH=path)
    assert result.stderr == "\nInterrupted.\n"


def resumed_with_history(tmp_path, scores):
    """A run resumed after 2 backed-up epochs, whose history.csv holds `scores`."""
    output_dir = fake_run(tmp_path / "out", epochs_done=2)
    rows = [f"{epoch},{score}" for epoch, score in enumerate(scores)]
    (output_dir / "history.csv").write_text("\n".join(["epoch,val_mean_iou", *rows]))
    run = runs.open_run(resume_args(output_dir))
    return run, run.callbacks(CIHP)


def test_history_rows_past_the_backup_are_dropped_on_resume(tmp_path):
    run, _ = resumed_with_history(tmp_path, [0.3, 0.5, 0.9])  # epoch 3: not backed up
    assert [row["epoch"] for row in runs.read_history(run.dir)] == ["0", "1"]


def test_a_resumed_run_replaces_the_best_model_only_with_a_better_one(tmp_path):
    run, callbacks = resumed_with_history(tmp_path, [0.3, 0.5])
    backup = callbacks[-1]
    backup.set_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
    backup.on_epoch_end(2, {"val_mean_iou": 0.4})  # below epoch 2's 0.5
    assert not (run.dir / "best_model.keras").exists()
    backup.on_epoch_end(3, {"val_mean_iou": 0.6})
    assert (run.dir / "best_model.keras").exists()
