"""--class-weights: rare classes weigh more in the loss (tests/test_losses.py checks
each loss's use of them), never in the scores."""

import numpy as np

from deeplab_support import metrics
from deeplab_support.classes import ClassTable


def batches(*masks):
    """(images, masks, weights) batches as the pipeline yields them; 255 is void."""
    for mask in masks:
        mask = np.asarray(mask)
        weights = (mask != 255).astype("float32")
        yield None, mask, weights


def test_weights_are_the_inverse_square_root_of_each_class_share(capsys):
    # Class 0: 12 pixels, class 1: 3, class 2: none; 4 void pixels are not counted.
    three = ClassTable(["a", "b", "c"], [(0, 0, 0), (1, 1, 1), (2, 2, 2)])
    found = metrics.class_weights(batches([0] * 12 + [1] * 3 + [255] * 4), three)
    expected = np.array([1 / np.sqrt(12), 1 / np.sqrt(3), 0])
    expected *= 15 / (12 * expected[0] + 3 * expected[1])  # mean pixel weight 1
    assert np.allclose(found, expected)
    printed = f"a {expected[0]:.2f}, b {expected[1]:.2f}, c 0.00"
    assert printed in capsys.readouterr().out
