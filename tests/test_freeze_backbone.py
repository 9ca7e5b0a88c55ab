"""--freeze-backbone: the ResNet50 stays as loaded; the encoder and decoder learn."""

import numpy as np
import pytest

import deeplabv3_plus as dl
from conftest import run_args, run_tutorial
from deeplab_support import cli

BACKBONE = ("conv1_", "conv2_", "conv3_", "conv4_")  # ResNet50's layer names


def weights_by_layer(path):
    """(name, weights) of each layer with weights (BatchNorm statistics included)
    in a saved model, in the model's order."""
    model, _ = cli.load_model(path, "--model")
    return [
        (layer.name, layer.get_weights()) for layer in model.layers if layer.weights
    ]


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
    args = cli.parse_args(dl.DEFAULTS, ["--freeze-backbone", "--weights", "none"])
    cli.check_args(args)
    assert "warning: --freeze-backbone with --weights none" in capsys.readouterr().out
