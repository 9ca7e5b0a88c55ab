"""Loading weights and models: files that are not what their names say; and
--freeze-backbone: the ResNet50 stays as loaded, the encoder and decoder learn."""

import warnings

import keras
import numpy as np
import pytest
from keras import layers

import deeplabv3_plus as dl
from conftest import fails_with, parse, run_args, run_tutorial
from deeplab_support import UserError, cli, files

BACKBONE = ("conv1_", "conv2_", "conv3_", "conv4_")  # ResNet50's layer names


@pytest.mark.parametrize("name", ["gone.weights.h5", "text.weights.h5", "text.keras"])
def test_weights_that_cannot_be_loaded_are_named(capsys, toy_root, tmp_path, name):
    phrase = "does not exist"
    if name.startswith("text"):
        (tmp_path / name).write_text("not weights")
        phrase = "cannot load --weights"
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


def test_a_model_saved_to_take_a_list_of_one_input_predicts_without_a_warning(
    tmp_path,
):
    inputs = keras.Input((32, 32, 3))  # as earlier releases saved models
    keras.Model([inputs], layers.Dense(20)(inputs)).save(tmp_path / "old.keras")
    model, _ = cli.load_model(tmp_path / "old.keras", "--model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras's "structure of `inputs`" warning
        model(np.zeros((1, 32, 32, 3)))  # as a parser export calls it
        model.predict_on_batch(np.zeros((1, 32, 32, 3)))  # as --predict on PyTorch


def weights_by_layer(path):
    """(name, weights) of each layer with weights (BatchNorm statistics included)
    in a saved model, in the model's order."""
    model, _ = cli.load_model(path, "--model")
    return [(lay.name, lay.get_weights()) for lay in model.layers if lay.weights]


@pytest.mark.slow
def test_a_frozen_backbone_stays_bit_identical_while_the_rest_learns(
    toy_root, tiny_run, tmp_path
):
    start = tiny_run / "model.keras"
    run_tutorial(*run_args(toy_root, tmp_path, "--weights", start, "--freeze-backbone"))
    before, after = weights_by_layer(start), weights_by_layer(tmp_path / "model.keras")
    assert len(before) == len(after)
    backbone = [name.startswith(BACKBONE) for name, _ in before]
    assert sum(backbone) > 80  # convolutions, and BatchNorm with its statistics
    for frozen, (name, old), (_, new) in zip(backbone, before, after):
        same = all(np.array_equal(a, b) for a, b in zip(old, new))
        assert same == frozen, name  # the backbone as it was; all else learnt


def test_only_the_backbone_is_frozen():
    for freeze in [True, False]:
        model = dl.DeeplabV3Plus(64, 3, freeze=freeze)
        for layer in [layer for layer in model.layers if layer.weights]:
            backbone = layer.name.startswith(BACKBONE)
            assert layer.trainable == (not (freeze and backbone)), layer.name


def test_freezing_a_random_backbone_is_a_warning(capsys):
    cli.check_args(parse("--freeze-backbone", "--weights", "none"))
    assert "warning: --freeze-backbone with --weights none" in capsys.readouterr().err
