"""--class-weights: rare classes weigh more in the loss, never in the scores."""

import keras
import numpy as np
import pytest

from conftest import run_args, run_python, run_tutorial
from deeplab_support import cli, metrics
from deeplab_support.classes import ClassTable


def batches(*masks):
    """(images, masks, weights) batches as the pipeline yields them; 255 is void."""
    for mask in masks:
        mask = np.asarray(mask)
        weights = (mask != 255).astype("float32")
        yield None, np.where(mask == 255, 0, mask), weights


def test_weights_are_the_inverse_square_root_of_each_class_share():
    # Class 0: 12 pixels, class 1: 3, class 2: none; 4 void pixels are not counted.
    three = ClassTable(["a", "b", "c"], [(0, 0, 0), (1, 1, 1), (2, 2, 2)])
    found = metrics.class_weights(batches([0] * 12 + [1] * 3 + [255] * 4), three)
    expected = np.array([1 / np.sqrt(12), 1 / np.sqrt(3), 0])
    expected *= 15 / (12 * expected[0] + 3 * expected[1])  # mean pixel weight 1
    assert np.allclose(found, expected)


def test_each_pixel_s_loss_is_scaled_by_its_class_weight():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 4, 4, 1))
    weights = np.array([0.5, 2.0, 1.0])
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    weighted = metrics.WeightedCrossentropy(weights, reduction=None)
    expected = np.asarray(plain(labels, logits)) * weights[labels[..., 0]]
    assert np.allclose(np.asarray(weighted(labels, logits)), expected, atol=1e-6)


@pytest.mark.slow
def test_a_weighted_run_prints_its_weights_and_plain_keras_loads_its_model(
    toy_root, tmp_path, capsys
):
    run_tutorial(*run_args(toy_root, tmp_path, "--class-weights"))
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("Class weights"))
    assert "Background 0." in line and "Glove" in line
    # A Python that never imported this project loads it and predicts the same.
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("uint8")
    np.save(tmp_path / "images.npy", images)
    load = (
        "import keras, numpy as np; "
        "model = keras.saving.load_model('model.keras'); "
        "np.save('logits.npy', model.predict_on_batch(np.load('images.npy')))"
    )
    run_python("-c", load, cwd=tmp_path, PYTHONPATH=None)
    model, _ = cli.load_model(tmp_path / "model.keras", "--model")
    expected = np.asarray(model.predict_on_batch(images))
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, atol=1e-5)
    assert 'load_model("model.keras")' in (tmp_path / "README.md").read_text()
