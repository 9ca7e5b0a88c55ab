"""--keep-aspect: photos fitted into the square unsquashed, the padding void, and
the prediction cropped back to the photo, wherever a model meets a photo."""

import keras
import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
import demo
from conftest import run_args, run_tutorial
from deeplab_support import cli, export
from deeplab_support.classes import CIHP, model_classes

KEPT = CIHP.__class__(CIHP.names, CIHP.colors, keep_aspect=True)
# A tall 1:2 photo: red on the left, green on the right; its mask says 1 and 2.
HALVES = np.zeros((64, 32, 3), np.uint8)
HALVES[:, :16, 0], HALVES[:, 16:, 1] = 255, 255
IDS = np.where(np.arange(32) < 16, 1, 2).astype(np.uint8)[None].repeat(64, 0)


def colour_model(size):
    """A stand-in model whose logits are the pixels' red, green and blue: class 0
    where a pixel is reddest, 1 greenest, 2 bluest."""
    inputs = keras.Input((size, size, 3))
    rolled = keras.layers.Lambda(lambda x: keras.ops.roll(x, 1, axis=-1))(inputs)
    return keras.Model(inputs, rolled)  # red -> class 1, green -> class 2


def test_the_pipeline_pads_the_mask_with_void_and_the_photo_with_black(tmp_path):
    image, mask = tmp_path / "tall.png", tmp_path / "tall_mask.png"
    Image.fromarray(HALVES).save(image)
    Image.fromarray(IDS).save(mask)
    batch = dl.data_generator([(str(image), str(mask))], 32, 1, KEPT, cache=False)
    images, masks, weights = (np.asarray(part)[0] for part in next(iter(batch)))
    # Fitted: 32 rows of 16 columns, the photo's left half red and right half green.
    np.testing.assert_array_equal(masks[:, :16, 0], IDS[::2, ::2])
    assert (masks[:, 16:] == CIHP.void).all() and (weights[:, 16:] == 0).all()
    assert (images[:, 16:] == 0).all() and (weights[:, :16] == 1).all()
    assert (images[:, :8, 0] == 255).all() and (images[:, 8:16, 1] == 255).all()


def test_a_tall_photo_s_ids_come_back_at_its_own_size():
    models = [colour_model(32)]
    predicted = dl.predict_full_resolution(models, HALVES, keep_aspect=True)
    assert predicted.shape == (64, 32)
    # The padding's logits are cropped off before the resize back: the right half
    # stays green, and the boundary moves by at most a pixel.
    assert (predicted[:, :15] == 1).all() and (predicted[:, 17:] == 2).all()


def test_a_video_s_frames_are_fitted_as_photos_are():
    keras.utils.set_random_seed(1)  # weights whose fitted and squashed ids differ
    models = [dl.DeeplabV3Plus(32, 3)]
    (frame, predicted), *_ = dl.predict_video(models, [HALVES], keep_aspect=True)
    expected = dl.predict_full_resolution(models, HALVES, keep_aspect=True)
    np.testing.assert_array_equal(predicted, expected)
    squashed = dl.predict_full_resolution(models, HALVES)
    assert frame is HALVES and (predicted != squashed).any()


def test_the_parser_export_fits_photos_as_predict_does():
    model = colour_model(32)
    graph, _ = export.parser_graph(model, keep_aspect=True)
    parsed = np.asarray(graph(HALVES[None]))[0]
    expected = dl.predict_full_resolution([model], HALVES, keep_aspect=True)
    assert parsed.shape == (64, 32)
    assert np.mean(parsed == expected) > 0.99  # bilinear in TF and OpenCV


def test_a_strip_thinner_than_the_square_allows_keeps_a_pixel(tmp_path):
    strip = np.full((1, 100, 3), 255, np.uint8)  # at 32 px, 0.32 of a row: 1, not 0
    Image.fromarray(strip).save(image := tmp_path / "strip.png")
    Image.fromarray(np.ones((1, 100), np.uint8)).save(mask := tmp_path / "mask.png")
    batch = dl.data_generator([(str(image), str(mask))], 32, 1, KEPT, cache=False)
    masks = np.asarray(next(iter(batch))[1])[0, ..., 0]
    assert (masks[0] == 1).all() and (masks[1:] == CIHP.void).all()
    model = colour_model(32)
    predicted = dl.predict_full_resolution([model], strip, keep_aspect=True)
    graph, _ = export.parser_graph(model, keep_aspect=True)
    np.testing.assert_array_equal(np.asarray(graph(strip[None]))[0], predicted)
    assert predicted.shape == (1, 100)


@pytest.mark.slow
def test_a_model_trained_with_keep_aspect_predicts_with_it(toy_root, tmp_path):
    run_tutorial(*run_args(toy_root, tmp_path, "--keep-aspect"))
    path = tmp_path / "model.keras"
    assert model_classes(path, 20).keep_aspect
    assert "aspect ratio kept" in (tmp_path / "README.md").read_text()
    Image.fromarray(HALVES).save(tall := tmp_path / "tall.png")
    run_tutorial("--predict", tall, "--model", path, "--output-dir", tmp_path / "out")
    ids = np.asarray(Image.open(tmp_path / "out" / "tall_ids.png"))
    model, classes = cli.load_model(path, "--model")
    expected = dl.predict_full_resolution([model], HALVES, keep_aspect=True)
    np.testing.assert_array_equal(ids, expected)  # fitted, as trained
    colored = demo.Segmenter(path)(str(tall))[1]
    shown = dl.decode_segmentation_masks(expected, classes.palette())
    np.testing.assert_array_equal(colored, shown)
