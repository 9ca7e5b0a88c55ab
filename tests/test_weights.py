"""Loading weights and models: files that are not what their names say."""

import keras
import pytest

from conftest import fails_with, run_args
from deeplab_support import UserError, cli, files


def test_weights_file_that_does_not_exist(capsys, toy_root, tmp_path):
    argv = run_args(toy_root, tmp_path / "out", "--weights", str(tmp_path / "w.h5"))
    fails_with(capsys, argv, "does not exist", "--weights")


def test_weights_file_that_is_not_weights(capsys, toy_root, tmp_path):
    (tmp_path / "w.weights.h5").write_text("not weights")
    argv = run_args(
        toy_root, tmp_path / "out", "--weights", str(tmp_path / "w.weights.h5")
    )
    fails_with(capsys, argv, "cannot load --weights")


def test_imagenet_weights_offline_suggest_weights_none(
    capsys, toy_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # no cached copy
    monkeypatch.setattr(files, "RESNET50_URL", "http://127.0.0.1:9/")  # no listener
    argv = run_args(toy_root, tmp_path / "out")
    argv[argv.index("none")] = "imagenet"
    fails_with(capsys, argv, "--weights none", files.RESNET50_WEIGHTS)


def test_text_file_named_keras_is_not_weights(tmp_path):
    (tmp_path / "w.keras").write_text("not a model")
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Dense(20)])
    with pytest.raises(UserError, match="cannot load --weights .*w.keras"):
        files.load_weights(model, str(tmp_path / "w.keras"))


@pytest.mark.parametrize(
    "shape, classes, phrase",
    [
        ((None, None, 3), 20, "takes inputs of shape"),
        ((32, 32, 3), 5, "no readable class table for its 5 outputs"),
    ],
)
def test_evaluate_says_what_is_wrong_with_the_model(tmp_path, shape, classes, phrase):
    model = keras.Sequential([keras.Input(shape), keras.layers.Dense(classes)])
    model.save(tmp_path / "other.keras")
    with pytest.raises(UserError, match=phrase):
        cli.load_model(tmp_path / "other.keras", "--evaluate")
