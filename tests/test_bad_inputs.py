"""Bad input, round two: each case stops with one clear line, or just works."""

import errno
import filelock
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from argparse import Namespace
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
from conftest import ROOT, fails_with, run_args, run_tutorial, split, schedule_of
from deeplab_support import UserError, cli, datasets, files, metrics, runs
from deeplab_support.datasets import CIHP

NUM_CLASSES = CIHP.num_classes


def nth_pair(root, n):
    """The n-th sorted (image, mask) pair of a CIHP folder."""
    images = sorted((root / "Training" / "Images").glob("*.jpg"))
    return images[n], root / "Training" / "Category_ids" / f"{images[n].stem}.png"


def pipeline_ids(path):
    """The class ids the tf.data pipeline reads from a checked mask path."""
    return np.unique(np.asarray(dl.read_image(path, 64, mask=True)))


def fake_run(output_dir, epochs_done, epochs=3, weights=True):
    """A run folder as training leaves it, without training: run.json and backup."""
    output_dir.mkdir(parents=True, exist_ok=True)
    config = {k: None for k in runs.RUN_CONFIG} | {"epochs": epochs}
    names = runs.OUTPUT_NAMES + [f"backup-{epochs_done:03d}", "backup-002"]
    runs.write_run_file(output_dir, {"config": config, "files": names, "pids": [999]})
    if epochs_done:
        backup = output_dir / f"backup-{epochs_done:03d}"
        backup.mkdir()
        if weights:
            (backup / runs.BACKUP_WEIGHTS).write_bytes(b"weights")
        record = {"epoch": epochs_done, "folder": backup.name}
        (output_dir / runs.BACKUP_FILE).write_text(json.dumps(record))
    return output_dir


def resume_args(output_dir, epochs=None, **flags):
    """The parsed flags of `--resume` (or others) for a run folder."""
    argv = ["--output-dir", str(output_dir), "--resume"]
    argv += ["--epochs", str(epochs)] if epochs else []
    args = cli.parse_args(dl.DEFAULTS, argv)
    vars(args).update(flags)
    return args


def subprocess_env(**extra):
    """The environment of a child run of the script."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


# 1. JAX --distribute with a last validation batch that does not split evenly.


@pytest.mark.slow
def test_distributed_validation_scores_every_image_on_any_device_count(
    toy_root, tmp_path
):
    argv = run_args(toy_root, tmp_path / "out", "--distribute")
    argv[argv.index("--num-val-images") + 1] = "6"  # batches of 4, then 2 over 4
    env = subprocess_env(
        KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=4"
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "deeplabv3_plus.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "over 4 device(s)" in result.stdout
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 0 <= summary["val_accuracy"] <= 1 and np.isfinite(summary["val_loss"])


def test_padding_copies_weigh_nothing_and_every_image_counts(monkeypatch):
    from tensorflow import data as tf_data

    from deeplab_support import devices

    monkeypatch.setattr(devices.keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(devices.keras.distribution, "list_devices", lambda: [0] * 4)
    images = np.arange(6, dtype="float32")[:, None, None, None] * np.ones((6, 2, 2, 3))
    masks = np.ones((6, 2, 2, 1), "int32")
    weights = np.ones((6, 2, 2), "float32")
    weights[5, 0, 0] = 0  # a void pixel stays void
    dataset = tf_data.Dataset.from_tensor_slices((images, masks, weights)).batch(4)
    batches = list(devices.pad_batches(dataset, True).as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [4, 4]
    weights = np.concatenate([b[2] for b in batches])
    assert weights.shape == (8, 2, 2) and weights.sum() == 6 * 4 - 1  # 6 images
    seen = np.concatenate([b[0] for b in batches])[weights[:, 1, 1] > 0, 0, 0, 0]
    assert seen.tolist() == [0, 1, 2, 3, 4, 5]


# 2. --lr-schedule poly, then --resume --epochs N with a larger N.


@pytest.mark.slow
def test_resumed_poly_schedule_keeps_learning_in_the_extra_epochs(toy_root, tmp_path):
    output_dir = tmp_path / "out"
    run_tutorial(*run_args(toy_root, output_dir, "--lr-schedule", "poly"))
    runs.unlock(output_dir)  # as if the first run's process had ended
    before = keras.saving.load_model(output_dir / "model.keras")
    run_tutorial(*run_args(toy_root, output_dir, "--resume", "--epochs", "2"))
    after = keras.saving.load_model(output_dir / "model.keras")
    steps = 8 // 4  # training images // batch size
    assert int(after.optimizer.iterations) == 2 * steps
    schedule = schedule_of(after.optimizer)  # rebuilt for the new total of steps
    assert schedule.decay_steps == 2 * steps
    assert float(schedule(steps)) > 0  # the first step of the extension
    moved = [
        not np.allclose(a, b) for a, b in zip(before.get_weights(), after.get_weights())
    ]
    assert sum(moved) > len(moved) // 2


# 3. 16-bit and palette masks: the check and the pipeline read the same ids.


@pytest.mark.parametrize("kind", ["16-bit", "palette"])
def test_16_bit_and_palette_masks_keep_their_ids(tmp_path, kind):
    ids = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % NUM_CLASSES
    if kind == "16-bit":
        mask = Image.fromarray(ids.astype(np.uint16) + 0)  # mode I;16
    else:
        mask = Image.fromarray(ids.astype(np.uint8), "P")
        mask.putpalette(np.array(CIHP.colors).ravel().tolist())
    mask.save(tmp_path / "m.png")
    checked = files.check_mask(tmp_path / "m.png", CIHP)
    assert np.asarray(Image.open(checked)).tolist() == ids.tolist()
    assert pipeline_ids(checked).tolist() == list(range(NUM_CLASSES))


# 4. A mask stored transposed next to a JPEG with an EXIF rotation.


def exif_rotated_pair(root, mask_size):
    """A 48x32 camera JPEG with EXIF rotation 6 (upright: 32x48), and a mask."""
    exif = Image.Exif()
    exif[files.EXIF_ORIENTATION] = 6
    Image.new("RGB", (48, 32), "white").save(root / "p.jpg", exif=exif)
    Image.new("L", mask_size, 3).save(root / "p.png")
    return root / "p.jpg", root / "p.png"


def test_mask_in_the_cameras_raw_orientation_names_both_files(tmp_path):
    image, mask = exif_rotated_pair(tmp_path, (48, 32))
    with pytest.raises(UserError, match="transposed") as error:
        files.check_pairs([(image, mask)], CIHP)
    assert str(image) in str(error.value) and str(mask) in str(error.value)


def test_uniformly_scaled_mask_is_resized_with_one_line(tmp_path, capsys):
    image, mask = exif_rotated_pair(tmp_path, (16, 24))  # upright, half size
    files.check_pairs([(image, mask), (image, mask)], CIHP)
    out = capsys.readouterr().out.strip()
    assert out.startswith("warning: 2 mask(s)") and "\n" not in out


# 5. Huge images.


def png_header(path, width, height):
    """A PNG that claims a size without holding the pixels (a few bytes)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    return path


def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    huge = png_header(tmp_path / "huge.png", 13_500, 13_500)
    message = "huge.png has more than 89 megapixels"
    with pytest.raises(UserError, match=message) as error:
        files.check_image(huge)
    assert str(huge) in str(error.value) and "downscale" in str(error.value)


def test_banded_upsampling_matches_a_whole_image_resize():
    logits = np.random.default_rng(0).normal(size=(16, 12, NUM_CLASSES))
    logits = logits.astype(np.float32)
    expected = np.argmax(cv2.resize(logits, (701, 997)), axis=-1)
    found = metrics.upsample_argmax(logits, (997, 701), band=64)
    assert (found == expected).mean() >= 0.9999


def test_confusion_matrix_counts_in_chunks(monkeypatch):
    labels = np.random.default_rng(1).integers(0, 5, size=1000)
    whole = metrics.confusion_matrix(labels, labels[::-1], 5)
    monkeypatch.setattr(metrics, "CHUNK", 7)
    assert (metrics.confusion_matrix(labels, labels[::-1], 5) == whole).all()


# 6. A TIFF named .jpg.


def test_tiff_named_jpg_is_refused_in_training(capsys, cihp_copy, tmp_path):
    image, _ = nth_pair(cihp_copy, 2)
    Image.open(image).save(image, format="TIFF")
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(image), "TIFF")


def test_tiff_named_jpg_is_refused_by_predict(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg", format="TIFF")
    with pytest.raises(UserError, match="TIFF file; convert it"):
        files.read_photo(tmp_path / "x.jpg")


# 7. A file name that is not UTF-8.


def test_non_utf8_file_names_go_through_the_pipeline(cihp_copy):
    image, mask = nth_pair(cihp_copy, 0)
    stem = os.fsdecode(os.fsencode(image.stem) + b"\xff")
    os.rename(image, image.with_name(stem + ".jpg"))
    os.rename(mask, mask.with_name(stem + ".png"))
    train, _ = split(cihp_copy, 16, 0)
    assert any(not files.is_utf8(p) for pair in train for p in pair)
    checked = files.check_pairs(train, CIHP)
    batches = dl.data_generator(checked, 64, 16, CIHP, cache=False)
    images, masks, _ = next(iter(batches))
    assert images.shape == (16, 64, 64, 3) and int(np.max(masks)) < NUM_CLASSES


# 8. Disk full while writing outputs.


def test_disk_full_names_the_folder_and_keeps_the_last_good_epoch(capsys, tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=2)
    full = OSError(errno.ENOSPC, "No space left on device", str(output_dir / "x"))
    assert cli.explain(full, Namespace(output_dir=str(output_dir))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the disk holding " + str(output_dir) + " is full")
    assert "last good epoch (2)" in err and "--resume" in err and "\n" not in err


def test_failed_write_of_run_file_is_one_line(capsys, toy_root, tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runs, "write_json", full)
    err = fails_with(capsys, run_args(toy_root, tmp_path / "out"), "is full")
    assert "nothing is kept" in err


def test_other_write_errors_name_the_file(tmp_path):
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "m.keras"))
    message = str(cli.output_error(denied, str(tmp_path)))
    assert str(tmp_path / "m.keras") in message and "Permission denied" in message
    elsewhere = OSError(errno.EACCES, "Permission denied", "/etc/passwd")
    assert cli.output_error(elsewhere, str(tmp_path)) is elsewhere  # not ours


# 9. Non-finite learning rates and losses.


def test_nan_learning_rate_is_refused(capsys, toy_root, tmp_path):
    argv = run_args(toy_root, tmp_path / "out", "--learning-rate", "nan")
    fails_with(capsys, argv, "--learning-rate must be a positive number")


@pytest.mark.parametrize("done", [0, 2])
def test_nan_loss_message_names_the_epoch_kept_only_if_any(capsys, tmp_path, done):
    output_dir = fake_run(tmp_path / "out", epochs_done=done)
    nan = RuntimeError("NaN or Inf loss encountered at batch 1. Stopping.")
    assert cli.explain(nan, Namespace(output_dir=str(output_dir))) == 2
    err = capsys.readouterr().err.strip()
    if done:
        assert "last good epoch (2)" in err and "--resume" in err
    else:
        assert "nothing is kept" in err and "last good" not in err


# 10. Weights and colormaps that are not what their names say.


def test_text_file_named_keras_is_not_weights(tmp_path):
    (tmp_path / "w.keras").write_text("not a model")
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Dense(20)])
    with pytest.raises(UserError, match="cannot load --weights .*w.keras"):
        files.load_weights(model, str(tmp_path / "w.keras"))


def test_empty_colormap_file_is_one_error(tmp_path):
    (tmp_path / "human_colormap.mat").write_bytes(b"")
    with pytest.raises(UserError, match="human_colormap.mat.*delete the file"):
        datasets.cihp_colors(tmp_path / "human_colormap.mat")


# 11. --evaluate with a model of another shape.


@pytest.mark.parametrize(
    "shape, classes, phrase",
    [
        ((None, None, 3), 20, "takes inputs of shape"),
        ((32, 32, 3), 5, "no readable class table for its 5 outputs"),
    ],
)
def test_evaluate_says_what_is_wrong_with_the_model(tmp_path, shape, classes, phrase):
    model = keras.Sequential([keras.Input(shape), keras.layers.Dense(classes)])
    model.save(tmp_path / "other.keras")
    with pytest.raises(UserError, match=phrase):
        cli.load_model(tmp_path / "other.keras", "--evaluate")


# 12. --predict a/ b/ with the same name in both.


def test_predict_outputs_of_same_named_photos_do_not_overwrite(tmp_path):
    for folder in "ab":
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "x.jpg")
    outputs = cli.photo_outputs([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    names = [prefix.name for _, prefix in outputs]
    assert names == ["x", "x-2"]


# 13. Two trainings in the same --output-dir.


def test_a_second_training_is_refused_while_the_first_holds_the_lock(tmp_path):
    first = filelock.FileLock(runs.lock_file(tmp_path), thread_local=False)
    first.acquire(timeout=0)  # as the first run holds it
    try:
        with pytest.raises(UserError, match="another run of this project is using"):
            runs.lock(tmp_path)
    finally:
        first.release()
    assert not list(tmp_path.iterdir())  # the lock leaves no file in the folder


@pytest.mark.slow
def test_the_lock_of_a_killed_run_is_released(tmp_path):
    code = (
        "import sys; from deeplab_support import runs; "
        f"runs.lock({str(tmp_path)!r}); print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match="another run of this project"):
        runs.lock(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    runs.lock(tmp_path)  # the OS released the dead run's lock
    runs.unlock(tmp_path)


# 14. Damaged run files: --overwrite recovers, --resume says what is wrong.


def test_truncated_run_file_stops_resume(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    (output_dir / runs.RUN_FILE).write_text('{"config": {"ima')
    with pytest.raises(UserError, match="run.json is damaged"):
        runs.prepare_resume(resume_args(output_dir))


def test_truncated_backup_metadata_stops_resume(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    (output_dir / runs.BACKUP_FILE).write_text('{"epo')
    with pytest.raises(UserError, match="backup record .* is damaged.*--overwrite"):
        runs.prepare_resume(resume_args(output_dir))


def test_missing_backup_weights_stop_resume(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1, weights=False)
    with pytest.raises(UserError, match="model.weights.h5 is missing"):
        runs.prepare_resume(resume_args(output_dir))


def test_overwrite_recovers_from_a_damaged_backup(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1, weights=False)
    (output_dir / runs.BACKUP_FILE).write_text("{")
    args = resume_args(output_dir, resume=False, overwrite=True)
    runs.prepare_resume(args)
    runs.open_run(args)
    runs.unlock(output_dir)
    assert runs.completed_epochs(output_dir) == 0
    assert sorted(p.name for p in output_dir.iterdir()) == [runs.RUN_FILE]


def test_overwrite_touches_nothing_when_run_json_is_not_ours(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    (output_dir / runs.RUN_FILE).write_text("{")  # damaged: ownership unprovable
    before = sorted(p.name for p in output_dir.iterdir())
    args = resume_args(output_dir, resume=False, overwrite=True)
    with pytest.raises(UserError, match="run.json is damaged or was not written"):
        runs.prepare_resume(args)
    with pytest.raises(UserError, match="run.json is damaged or was not written"):
        runs.open_run(args)
    assert sorted(p.name for p in output_dir.iterdir()) == before


# 15. Smaller ones.


def test_leftovers_of_a_killed_run_are_cleaned_on_resume(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    (output_dir / ".tmp-999-model.keras").write_text("half")  # pid 999 is recorded
    (output_dir / "backup-002").mkdir()  # listed in the manifest, never committed
    runs.open_run(resume_args(output_dir))
    runs.unlock(output_dir)
    names = sorted(p.name for p in output_dir.iterdir())
    assert names == ["backup-001", runs.BACKUP_FILE, runs.RUN_FILE]


def test_resume_with_fewer_epochs_than_done_is_an_error(tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=3)
    with pytest.raises(UserError, match="already completed 3 epochs"):
        runs.prepare_resume(resume_args(output_dir, epochs=2))


def test_jpeg_saved_as_a_mask_png_gets_a_warning(tmp_path, capsys):
    ids = np.zeros((16, 16), np.uint8)
    ids[4:12, 4:12] = 13
    Image.fromarray(ids).save(tmp_path / "m.png", format="JPEG")
    checked = files.check_mask(tmp_path / "m.png", CIHP)
    out = capsys.readouterr().out.strip()
    assert out.startswith("warning: mask") and "JPEG" in out and "\n" not in out
    assert Image.open(checked).format == "PNG"  # what tf.data decodes as a mask


@pytest.mark.slow
def test_a_user_error_prints_exactly_one_line_on_stderr(cihp_copy, tmp_path):
    image, _ = nth_pair(cihp_copy, 1)
    Image.open(image).save(image, format="TIFF")
    result = subprocess.run(
        [sys.executable, str(ROOT / "deeplabv3_plus.py")]
        + run_args(cihp_copy, tmp_path / "out"),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert str(image) in result.stderr
    assert not Path(tmp_path / "out").exists()
