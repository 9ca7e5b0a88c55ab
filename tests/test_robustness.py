"""Bad files, bad weights, non-finite losses and second runs."""

import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
from conftest import fails_with, run_args
from deeplab_support import files, runs
from deeplab_support.datasets import CIHP


def nth_file(root, folder, n, pattern):
    """The n-th sorted file of a CIHP sub-folder."""
    return sorted((root / "Training" / folder).glob(pattern))[n]


def test_truncated_jpeg_is_reported_before_training(capsys, cihp_copy, tmp_path):
    image = nth_file(cihp_copy, "Images", 5, "*.jpg")
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(image))
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_non_image_with_an_image_extension(capsys, cihp_copy, tmp_path):
    image = nth_file(cihp_copy, "Images", 10, "*.jpg")
    image.write_text("this is not a picture")
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(image))


def test_corrupt_mask(capsys, cihp_copy, tmp_path):
    mask = nth_file(cihp_copy, "Category_ids", 2, "*.png")
    mask.write_bytes(mask.read_bytes()[:100])
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(mask))


def test_mask_ids_outside_the_classes_are_listed(capsys, cihp_copy, tmp_path):
    mask = nth_file(cihp_copy, "Category_ids", 3, "*.png")
    pixels = np.asarray(Image.open(mask)).copy()
    pixels[0, :3] = [25, 200, 25]
    Image.fromarray(pixels).save(mask)
    fails_with(
        capsys,
        run_args(cihp_copy, tmp_path / "out"),
        str(mask),
        "id 25 on 2 pixels, id 200 on 1 pixel",
        "void label 255",
    )


def test_a_mask_is_read_at_its_images_size_by_nearest_neighbour(tmp_path):
    blocks = np.kron(np.array([[0, 5], [13, 0]], np.uint8), np.ones((4, 4), np.uint8))
    Image.fromarray(blocks).save(tmp_path / "m.png")
    mask = files.read_mask(tmp_path / "m.png", (16, 12), CIHP)
    assert mask.shape == (16, 12) and set(np.unique(mask)) == {0, 5, 13}
    resized = dl.read_image(str(tmp_path / "m.png"), 32, mask=True)
    assert np.asarray(resized).shape == (32, 32, 1)


def tiny_classifier():
    """A one-layer, three-class model with the tutorial's metrics; trains at once."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    dl.compile_model(model, keras.optimizers.Adam(), 3)
    return model


def test_a_nan_loss_stops_at_once_and_keeps_the_last_good_epoch(tmp_path):
    model, run = tiny_classifier(), runs.Run(
        SimpleNamespace(batch_size=2, epochs=2, tensorboard=False), tmp_path
    )
    good = np.ones((8, 4), "float32"), np.zeros((8,), "int32")
    fit = dict(validation_data=good, batch_size=2, verbose=0)
    model.fit(*good, epochs=1, callbacks=run.callbacks(8, CIHP), **fit)
    poisoned = np.full((8, 4), np.nan, "float32"), good[1]
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        model.fit(*poisoned, epochs=2, callbacks=run.callbacks(8, CIHP), **fit)
    assert runs.completed_epochs(tmp_path) == 1
    assert [row["epoch"] for row in runs.read_history(tmp_path)] == ["0"]
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert np.isfinite(restored.predict_on_batch(good[0])).all()


def test_a_second_run_refuses_to_overwrite(capsys, tiny_run, toy_root):
    fails_with(capsys, run_args(toy_root, tiny_run), "--resume", "--overwrite")


def test_a_run_keeps_one_committed_backup_and_the_users_files(tiny_run):
    assert json.loads((tiny_run / "run.json").read_text())["config"]["epochs"] == 1
    assert runs.completed_epochs(tiny_run) == 1
    backups = sorted(p.name for p in tiny_run.glob("backup-*"))
    assert backups == ["backup-001"]
    assert (tiny_run / "my_notes.txt").read_text() == "the user's"
    assert runs.linked_backup(tiny_run) == "backup-001"
    keras.saving.load_model(tiny_run / "model.keras")


def test_resume_without_a_run_is_an_error(capsys, toy_root, tmp_path):
    fails_with(
        capsys, run_args(toy_root, tmp_path / "out", "--resume"), "nothing to resume"
    )
