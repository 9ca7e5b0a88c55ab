"""Test-time augmentation: flip (left and right classes swap back) and scales."""

import json
import logging

import keras
import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as tutorial
from conftest import fails_with, run_args, run_tutorial
from deeplab_support import cli, files
from deeplab_support.classes import CIHP

LEFT_ARM, RIGHT_ARM = 14, 15


class LeftArmOnTheLeft:
    """A stub model: every pixel in the image's left half scores Left-arm."""

    def predict_on_batch(self, images):
        batch, height, width = images.shape[:3]
        logits = np.zeros((batch, height, width, 20), dtype=np.float32)
        logits[:, :, : width // 2, LEFT_ARM] = 1.0
        return logits


def test_scales_round_to_sizes_the_output_stride_of_16_divides():
    assert cli.tta_sizes("0.6,0.75,1.3", 64) == [32, 48, 80]


@pytest.mark.parametrize("flip, share", [(None, 1.0), (CIHP.flip, 0.5)])
def test_flip_averages_with_the_mirror_and_swaps_its_sides(flip, share):
    images = np.zeros((1, 4, 6, 3), dtype=np.float32)
    logits = tutorial.predict_logits(LeftArmOnTheLeft(), images, flip)[0]
    # The mirror's Left-arm on its left half is the image's right half, as Right-arm.
    assert np.all(logits[:, :3, LEFT_ARM] == share)
    assert np.all(logits[:, 3:, RIGHT_ARM] == 1 - share)
    assert logits[:, :3, RIGHT_ARM].max() == logits[:, 3:, LEFT_ARM].max() == 0


class OneClass:
    """A stub model of one input size that scores one class everywhere."""

    def __init__(self, size, class_id, score):
        self.input_shape, self.seen = (None, size, size, 3), []
        self.class_id, self.score = class_id, score

    def predict_on_batch(self, images):
        """Remember the input's shape; light one class with one score."""
        self.seen.append(images.shape[1:3])
        logits = np.zeros((*images.shape[:3], 3), dtype=np.float32)
        logits[..., self.class_id] = self.score
        return logits


def test_each_scale_sees_the_photo_at_its_own_input_size_and_the_logits_add():
    models = [OneClass(32, 1, 1.0), OneClass(96, 2, 0.4), OneClass(64, 2, 0.7)]
    image = np.full((50, 70, 3), 128, np.uint8)
    predicted = tutorial.predict_full_resolution(models, image)
    assert [model.seen for model in models] == [[(32, 32)], [(96, 96)], [(64, 64)]]
    # Class 2 wins only because its two scales add up: 0.4 + 0.7 > 1.0.
    assert predicted.shape == (50, 70) and np.all(predicted == 2)


def test_the_model_is_rebuilt_at_each_scale_with_its_own_weights():
    keras.utils.set_random_seed(1)
    model = tutorial.DeeplabV3Plus(64, 3)
    models = tutorial.at_scales(model, "0.5,1e0,1.25")  # any way to write a number
    assert models[1] is model
    assert [m.input_shape[1:3] for m in models] == [(32, 32), (64, 64), (80, 80)]
    for scaled in models:
        for ours, theirs in zip(scaled.get_weights(), model.get_weights()):
            assert np.array_equal(ours, theirs)


@pytest.mark.slow
def test_five_scales_predict_without_a_tensorflow_log_line():
    logged = []
    handler = logging.Handler()
    handler.emit = logged.append  # whatever TensorFlow's logger passes on
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        models = tutorial.at_scales(tutorial.DeeplabV3Plus(32, 3), "1,1.5,2,2.5,3")
        tutorial.logits_at_sizes(models, np.zeros((40, 30, 3), np.uint8))
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert logged == []


@pytest.mark.parametrize(
    "scales, phrases",
    [
        ("1,big", ["positive numbers", "'big'"]),
        ("0,1", ["positive numbers", "'0'"]),
        ("1,nan", ["positive numbers", "'nan'"]),
        ("1,1e999", ["positive numbers", "'1e999'"]),
        ("0.2,1", ["64 px model", "under the 32 px", "at least 0.50"]),
    ],
)
def test_a_bad_scale_is_refused_before_training(capsys, tmp_path, scales, phrases):
    argv = run_args(tmp_path / "none", tmp_path / "out", "--tta-scales", scales)
    fails_with(capsys, argv, "--tta-scales", *phrases)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_predict_evaluate_and_the_demo_use_the_scales(tiny_run, toy_root, tmp_path):
    import demo

    model, picture = tiny_run / "model.keras", tmp_path / "photo.png"
    Image.fromarray(np.full((90, 60, 3), 128, np.uint8)).save(picture)
    scales = "0.5,1,1.1,1.5"  # 1.1 rounds to the size of 1: one model for both
    tta = ["--tta", "flip", "--tta-scales", scales]
    run_tutorial("--predict", picture, "--model", model, "--output-dir", tmp_path, *tta)
    written = np.asarray(Image.open(tmp_path / "photo_ids.png"))
    segmenter = demo.Segmenter(model, flip=True, scales=scales)
    assert "32/64/96 px model input, flip TTA" in segmenter(picture)[3]
    image = files.read_photo(picture)
    shown = tutorial.predict_full_resolution(segmenter.models, image, CIHP.flip)
    assert np.array_equal(written, shown)
    argv = ["--evaluate", model, "--data-dir", toy_root, "--output-dir", tmp_path]
    run_tutorial(*argv, "--num-train-images", 12, "--num-val-images", 4, *tta)
    scores = json.loads((tmp_path / "evaluation.json").read_text())
    assert scores["tta"] == {"flip": True, "input_sizes": [32, 64, 96]}
