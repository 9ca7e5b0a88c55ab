"""Flags and their defaults."""

from pathlib import Path

import deeplabv3_plus as dl
from deeplab_support import cli


def parse(*argv):
    """The checked arguments of a command line, with the tutorial's defaults."""
    return cli.parse_args(dl.DEFAULTS, [str(a) for a in argv])


def test_model_defaults_to_the_one_trained_into_output_dir():
    assert Path(parse("--predict", "x.jpg", "--output-dir", "runs/a").model) == Path(
        "runs/a/model.keras"
    )
    assert parse("--predict", "x.jpg", "--model", "m.keras").model == "m.keras"


def test_quick_fills_only_the_flags_not_given():
    args = parse("--quick", "--epochs", "3")
    assert (args.epochs, args.image_size, args.weights) == (3, 112, "none")
    assert (
        args.class_weights and not parse("--quick", "--no-class-weights").class_weights
    )
