"""Loading weights and models: files that are not what their names say."""

import keras
import pytest
from keras import layers

from conftest import fails_with, run_args
from deeplab_support import UserError, cli, files


@pytest.mark.parametrize(
    "name, phrase",
    [
        ("missing.weights.h5", "does not exist"),
        ("text.weights.h5", "cannot load --weights"),
        ("text.keras", "cannot load --weights"),
    ],
)
def test_weights_that_cannot_be_loaded_are_named(
    capsys, toy_root, tmp_path, name, phrase
):
    if name.startswith("text"):
        (tmp_path / name).write_text("not weights")
    argv = run_args(toy_root, tmp_path / "out", "--weights", tmp_path / name)
    fails_with(capsys, argv, phrase, str(tmp_path / name))


def test_imagenet_weights_offline_suggest_weights_none(
    capsys, toy_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # no cached copy
    monkeypatch.setattr(files, "RESNET50_URL", "http://127.0.0.1:9/")  # no listener
    argv = run_args(toy_root, tmp_path / "out")
    argv[argv.index("none")] = "imagenet"
    fails_with(capsys, argv, "--weights none", files.RESNET50_WEIGHTS)


@pytest.mark.parametrize(
    "shape, pool, classes, phrase",
    [
        ((None, None, 3), False, 20, "takes inputs of shape"),
        ((32, 32, 3), False, 5, "no readable class table for its 5 outputs"),
        ((32, 32, 3), True, 20, "not one score per class for every pixel"),
    ],
)
def test_a_model_that_is_not_a_segmenter_says_what_is_wrong(
    tmp_path, shape, pool, classes, phrase
):
    pooled = [layers.GlobalAveragePooling2D()] if pool else []  # a classifier
    model = keras.Sequential([keras.Input(shape), *pooled, layers.Dense(classes)])
    model.save(tmp_path / "other.keras")
    with pytest.raises(UserError, match=phrase):
        cli.load_model(tmp_path / "other.keras", "--evaluate")
