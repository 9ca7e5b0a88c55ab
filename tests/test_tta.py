"""Flip test-time augmentation: the mirror's left and right classes swap back."""

import numpy as np

import deeplabv3_plus as tutorial
from deeplab_support.datasets import CIHP

LEFT_ARM, RIGHT_ARM = 14, 15


class LeftArmOnTheLeft:
    """A stub model: every pixel in the image's left half scores Left-arm."""

    def predict_on_batch(self, images):
        """Logits that light Left-arm on the left half, nothing elsewhere."""
        batch, height, width = images.shape[:3]
        logits = np.zeros((batch, height, width, 20), dtype=np.float32)
        logits[:, :, : width // 2, LEFT_ARM] = 1.0
        return logits


def test_flip_averages_with_the_mirror_and_swaps_its_sides():
    images = np.zeros((1, 4, 6, 3), dtype=np.float32)
    logits = tutorial.predict_logits(LeftArmOnTheLeft(), images, CIHP.flip)
    # The mirror's Left-arm on its left half is the image's right half, as Right-arm.
    assert np.all(logits[0, :, :3, LEFT_ARM] == 0.5)
    assert np.all(logits[0, :, 3:, RIGHT_ARM] == 0.5)
    assert np.all(logits[0, :, :3, RIGHT_ARM] == 0)
    assert np.all(logits[0, :, 3:, LEFT_ARM] == 0)


def test_without_flip_the_logits_are_the_model_s_own():
    images = np.zeros((1, 4, 6, 3), dtype=np.float32)
    logits = tutorial.predict_logits(LeftArmOnTheLeft(), images)
    assert np.all(logits[0, :, :3, LEFT_ARM] == 1) and logits[..., RIGHT_ARM].max() == 0


def test_flip_classes_swap_every_left_and_right_pair_and_nothing_else():
    swapped = {i: j for i, j in enumerate(CIHP.flip) if i != j}
    assert swapped == {14: 15, 15: 14, 16: 17, 17: 16, 18: 19, 19: 18}
