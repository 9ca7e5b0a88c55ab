"""The same script on TensorFlow, JAX and PyTorch, and models moving between them."""

import json

import keras
import numpy as np
import pytest

from conftest import ROOT, TINY, run_python

pytestmark = pytest.mark.slow


def run(backend, *args, extra_env=None, timeout=900):
    """Run a Python script of this project under a Keras backend."""
    return run_python(
        *args, timeout=timeout, KERAS_BACKEND=backend, **(extra_env or {})
    )


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_tiny_run_completes_on_each_backend(backend, toy_root, tiny_run, tmp_path):
    output_dir = tmp_path / "out"
    tutorial = ROOT / "deeplabv3_plus.py"
    run(backend, tutorial, "--data-dir", toy_root, "--output-dir", output_dir, *TINY)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["val_loss"]) and (output_dir / "model.keras").is_file()
    # A model saved on TensorFlow predicts the same classes here.
    predictions = tmp_path / "predictions.npy"
    script = ROOT / "tests" / "scripts" / "predict_classes.py"
    run(backend, script, tiny_run / "model.keras", predictions)
    model = keras.saving.load_model(tiny_run / "model.keras")  # on TensorFlow
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    found, expected = np.load(predictions), np.asarray(model.predict_on_batch(images))
    np.testing.assert_allclose(found, expected, rtol=1e-3, atol=1e-3)
    agreement = (found.argmax(-1) == expected.argmax(-1)).mean()
    assert agreement > 0.999


def test_distribute_splits_each_batch_over_devices_and_matches_one_device(toy_root):
    script = ROOT / "tests" / "scripts" / "sharding_probe.py"
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    report = json.loads(
        run("jax", script, toy_root, extra_env=flags).stdout.strip().splitlines()[-1]
    )
    single, shared = report["single"], report["shared"]
    assert report["devices"] == 2
    # Inside the training step each device holds half of the batch of 8.
    assert [4, 64, 64, 3] in [shape for shape, _ in shared["shard_shapes"]]
    assert all(devices == 2 for _, devices in shared["shard_shapes"])
    assert all(shape[0] == 8 for shape, _ in single["shard_shapes"])
    assert shared["loss"] == pytest.approx(single["loss"], rel=1e-3)
    assert shared["logits_mean"] == pytest.approx(
        single["logits_mean"], rel=1e-2, abs=1e-3
    )


def test_an_error_on_jax_after_loading_a_model_is_one_line(tiny_run, tmp_path):
    command = [ROOT / "deeplabv3_plus.py", "--export", "onnx"]
    command += ["--model", tiny_run / "model.keras", "--output-dir", tmp_path]
    result = run_python(*command, exit_code=2, cwd=tmp_path, KERAS_BACKEND="jax")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no warnings
    assert lines[0].startswith("error: --export onnx runs on TensorFlow's exporters")


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_one_step_of_more_than_2_to_the_24_pixels_of_a_class_counts_every_pixel(
    backend,
):
    result = run(backend, ROOT / "tests" / "scripts" / "many_pixels.py", timeout=300)
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["found"] == scores["expected"], scores  # exactly, in integers
    assert scores["expected"][3] > 2**24  # Hat, right: past float32's whole numbers
    assert scores["mean_iou"] == pytest.approx((16 / 64 + 16781245 / 16781293) / 2)
