"""Flags and their defaults."""

from pathlib import Path

import pytest

import deeplabv3_plus as dl
from conftest import ROOT, fails_with, run_args, run_python
from deeplab_support import cli, devices


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


@pytest.mark.parametrize("size", ["100", "0", "-32"])
def test_bad_image_size(capsys, toy_root, tmp_path, size):
    argv = run_args(toy_root, tmp_path / "out", "--image-size", size)
    fails_with(capsys, argv, "--image-size")


@pytest.mark.parametrize(
    "flag", ["--batch-size", "--epochs", "--num-val-images", "--steps-per-execution"]
)
def test_non_positive_counts(capsys, toy_root, tmp_path, flag):
    fails_with(capsys, run_args(toy_root, tmp_path / "out", flag, "0"), flag)


@pytest.mark.parametrize("rate", ["nan", "inf", "0", "-1"])
def test_learning_rate_must_be_a_positive_number(capsys, toy_root, tmp_path, rate):
    argv = run_args(toy_root, tmp_path / "out", "--learning-rate", rate)
    fails_with(capsys, argv, "--learning-rate")


@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["--image-size", "abc"], "invalid int value: 'abc'"),
        (["--tta", "mirror"], "invalid choice: 'mirror'"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--predict"], "expected at least one argument"),
    ],
)
def test_a_malformed_flag_is_one_error_line_not_the_usage(capsys, argv, phrase):
    fails_with(capsys, argv, phrase, "--help")


@pytest.mark.parametrize("flag", ["--output-dir", "--data-dir", "--model"])
def test_an_empty_path_is_refused_not_taken_as_the_current_folder(capsys, flag):
    fails_with(capsys, ["--predict", "photo.jpg", flag, ""], f"{flag}: an empty path")


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_numpy_cannot_take_is_refused(capsys, toy_root, tmp_path, seed):
    argv = run_args(toy_root, tmp_path / "out", "--seed", seed)
    fails_with(capsys, argv, f"--seed: must lie in 0..{2**32 - 1}, got {seed}")


def test_a_cache_larger_than_the_memory_is_refused_before_any_work(
    capsys, toy_root, tmp_path, monkeypatch
):
    monkeypatch.setattr(devices, "memory_bytes", lambda: 2**30)  # a 1 GiB machine
    argv = run_args(toy_root, tmp_path / "out", "--image-size", "512")
    argv += ["--num-train-images", "1000", "--num-val-images", "50"]
    fails_with(capsys, argv, "--cache would keep 1.0 GiB", "1.0 GiB; pass --no-cache")
    assert not (tmp_path / "out").exists()
    cli.check_args(parse(*argv, "--no-cache"))  # decoding every epoch fits


def test_two_modes_at_once_are_refused(capsys, tmp_path):
    argv = ["--evaluate", "m.keras", "--predict", "x.jpg", "--output-dir", tmp_path]
    fails_with(capsys, argv, "--predict and --evaluate cannot be combined")


def test_model_given_to_training_points_to_weights(capsys, toy_root, tmp_path):
    argv = run_args(toy_root, tmp_path / "out", "--model", "saved.keras")
    fails_with(
        capsys, argv, "to start training from a saved model, pass it as --weights"
    )
    assert not (tmp_path / "out").exists()


def test_exit_code_and_one_line_from_the_command_line(tmp_path):
    command = [ROOT / "deeplabv3_plus.py", "--image-size", "100"]
    result = run_python(*command, exit_code=2, cwd=tmp_path)
    assert result.stderr.strip().startswith("error: --image-size")
    assert len(result.stderr.strip().splitlines()) == 1  # no library log lines


def test_tensorboard_without_its_package_says_how_to_install_it(
    capsys, toy_root, tmp_path, monkeypatch
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n: None if n == "tensorboard" else real(n)
    )
    argv = run_args(toy_root, tmp_path / "out", "--tensorboard")
    fails_with(capsys, argv, "--tensorboard needs the tensorboard package", "pip")
