"""The same script on TensorFlow, JAX and PyTorch, and models moving between them."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_args, run_python, write_clip

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_tiny_run_completes_on_each_backend(backend, toy_root, tmp_path):
    tutorial = ROOT / "deeplabv3_plus.py"
    run_python(tutorial, *run_args(toy_root, tmp_path), KERAS_BACKEND=backend)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert np.isfinite(metrics["val_loss"]) and (tmp_path / "model.keras").is_file()


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_saved_model_predicts_the_same_in_plain_keras_on_each_backend(
    backend, tiny_run, tmp_path
):
    # A fresh Python outside the project folder, which cannot import this project.
    script = ROOT / "tests" / "scripts" / "predict_classes.py"
    found, env = tmp_path / "logits.npy", dict(KERAS_BACKEND=backend, PYTHONPATH=None)
    run_python(script, tiny_run / "model.keras", found, cwd=tmp_path, **env)
    model = keras.saving.load_model(tiny_run / "model.keras")  # on TensorFlow
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    found, expected = np.load(found), np.asarray(model.predict_on_batch(images))
    assert found.shape == (2, 64, 64, 20)  # a score for every class and pixel
    np.testing.assert_allclose(found, expected, rtol=1e-3, atol=1e-3)
    assert (found.argmax(-1) == expected.argmax(-1)).mean() > 0.999


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_one_step_of_more_than_2_to_the_24_pixels_of_a_class_counts_every_pixel(
    backend,
):
    script = ROOT / "tests" / "scripts" / "many_pixels.py"
    result = run_python(script, timeout=300, KERAS_BACKEND=backend)
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["found"] == scores["expected"], scores  # exactly, in integers
    assert scores["expected"][3] > 2**24  # Hat, right: past float32's whole numbers
    assert scores["mean_iou"] == pytest.approx((16 / 64 + 16781245 / 16781293) / 2)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_predict_with_a_class_map_masks_and_a_video_matches_tensorflow(
    backend, tiny_run, example_photo, tmp_path
):
    clip = write_clip(tmp_path / "clip.avi", count=3)
    coarse = ROOT / "class_maps" / "cihp_coarse.txt"
    flags = ["--predict", example_photo, clip, "--model", tiny_run / "model.keras"]
    flags += ["--class-map", coarse, "--mask-classes", "head,arms", "--cutout"]
    flags += ["--temporal-smoothing", "0.5"]
    for name in ["tensorflow", backend]:
        output_dir = ["--output-dir", tmp_path / name]
        done = run_python(
            ROOT / "deeplabv3_plus.py", *flags, *output_dir, KERAS_BACKEND=name
        )
        said = done.stderr.splitlines()  # ours alone: the video gets no masks
        assert len(said) == 1 and "a video gets its overlay video" in said[0]
    written = [f"person_3_{kind}.png" for kind in ["ids", "class-head+arms"]]
    written += ["person_3_cutout-head+arms.png", "clip_ids/000002.png"]
    for name in written:
        found = np.asarray(Image.open(tmp_path / backend / name))
        expected = np.asarray(Image.open(tmp_path / "tensorflow" / name))
        assert (found == expected).mean() > 0.999, name
