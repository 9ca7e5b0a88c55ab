"""--loss: cross-entropy, focal, Dice, cross-entropy + Dice; void left out of each;
--class-weights: rare classes weigh more in each loss, never in the scores."""

import csv
import functools
import json

import numpy as np
import pytest

from conftest import ROOT, run_args, run_python, run_tutorial
from deeplab_support import cli, metrics
from deeplab_support.classes import ClassTable

SLOW = pytest.mark.slow
BACKENDS = ["tensorflow", *(pytest.param(b, marks=SLOW) for b in ["jax", "torch"])]
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.0])  # as tests/scripts/losses.py uses them


@functools.cache
def probe(backend):
    """What tests/scripts/losses.py prints on this backend."""
    script = ROOT / "tests" / "scripts" / "losses.py"
    result = run_python(script, KERAS_BACKEND=backend)
    return json.loads(result.stdout.strip().splitlines()[-1])


def numpy_loss(kind, masks, logits, class_weights=np.ones(3), void=255):
    """The loss written out in NumPy: the mean over non-void pixels of the pixels'
    cross-entropy or focal term, plus 1 - the mean Dice of the classes present."""
    valid = masks[..., 0] != void
    labels, logits = masks[..., 0][valid], logits[valid]  # (pixels,), (pixels, 3)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p_true = probs[np.arange(len(labels)), labels]
    crossentropy = -np.log(p_true) * class_weights[labels]
    total = 0.0
    if kind in ["crossentropy", "crossentropy+dice"]:
        total += crossentropy.mean()
    if kind == "focal":
        total += ((1 - p_true) ** 2 * crossentropy).mean()
    if kind in ["dice", "crossentropy+dice"]:
        dice, weights = [], []
        for c in np.unique(labels):  # the classes present
            truth = labels == c
            dice.append(2 * probs[truth, c].sum() / (probs[:, c].sum() + truth.sum()))
            weights.append(class_weights[c])
        total += 1 - np.average(dice, weights=weights)
    return total


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_loss_matches_its_numpy_reference(backend):
    found = probe(backend)
    masks, logits = np.array(found["masks"]), np.array(found["logits"])
    for kind in metrics.LOSSES:
        expected = numpy_loss(kind, masks, logits)
        assert found["values"][kind] == pytest.approx(expected, rel=1e-5), kind
        expected = numpy_loss(kind, masks, logits, CLASS_WEIGHTS)
        assert found["values"][kind + " weighted"] == pytest.approx(expected, rel=1e-5)
    assert found["values"]["dice perfect"] < 1e-6  # a perfect prediction: Dice 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_void_predictions_change_neither_any_loss_nor_any_score(backend):
    for kind, (same, on_void, on_valid) in probe(backend)["scores"].items():
        assert on_void == same, kind  # loss, accuracy and mean IoU: unchanged
        assert all(on_valid[key] != same[key] for key in same), kind  # can fail


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["focal", "crossentropy+dice"])
def test_a_model_trained_with_our_loss_loads_in_plain_keras(kind, toy_root, tmp_path):
    run_tutorial(*run_args(toy_root, tmp_path, "--loss", kind, "--class-weights"))
    with open(tmp_path / "history.csv") as history:
        assert np.isfinite(float(list(csv.DictReader(history))[-1]["loss"]))
    assert f"| loss | {kind} |" in (tmp_path / "README.md").read_text()
    # A Python that never imports this project loads it and predicts the same.
    script = ROOT / "tests" / "scripts" / "predict_classes.py"
    found = tmp_path / "logits.npy"
    run_python(script, tmp_path / "model.keras", found, cwd=tmp_path, PYTHONPATH=None)
    model, _ = cli.load_model(tmp_path / "model.keras", "--model")
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = np.asarray(model.predict_on_batch(images))  # as the script's images
    np.testing.assert_allclose(np.load(found), expected, atol=1e-5)
    assert 'load_model("model.keras")' in (tmp_path / "README.md").read_text()


def test_class_weights_are_the_inverse_square_root_of_each_class_share(capsys):
    # Class 0: 12 pixels, class 1: 3, class 2: none; 4 void pixels are not counted.
    three = ClassTable(["a", "b", "c"], [(0, 0, 0), (1, 1, 1), (2, 2, 2)])
    mask = np.array([0] * 12 + [1] * 3 + [255] * 4)
    batches = [(None, mask, (mask != 255).astype("float32"))]  # as the pipeline's
    found = metrics.class_weights(batches, three)
    expected = np.array([1 / np.sqrt(12), 1 / np.sqrt(3), 0])
    expected *= 15 / (12 * expected[0] + 3 * expected[1])  # mean pixel weight 1
    assert np.allclose(found, expected)
    printed = f"a {expected[0]:.2f}, b {expected[1]:.2f}, c 0.00"
    assert printed in capsys.readouterr().out
