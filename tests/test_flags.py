"""Flags and their defaults."""

import sys
from pathlib import Path

import keras
import pytest

from conftest import ROOT, fails_with, fake_run, parse, run_args, run_python
from deeplab_support import cli, devices


def test_model_defaults_to_the_one_trained_into_output_dir():
    args = parse("--predict", "x.jpg", "--output-dir", "runs/a")
    assert Path(args.model) == Path("runs/a/model.keras")
    assert parse("--predict", "x.jpg", "--model", "m.keras").model == "m.keras"


def test_quick_fills_only_the_flags_not_given():
    given = parse("--quick", "--epochs", "3", "--no-class-weights")
    assert (given.epochs, given.image_size, given.weights) == (3, 112, "none")
    assert parse("--quick").class_weights and not given.class_weights


OUT_OF_RANGE = [("--image-size", v) for v in ["100", "0", "-32", "16"]]  # 32, 48...
OUT_OF_RANGE += [(f, "0") for f in ["--batch-size", "--epochs", "--num-val-images"]]
OUT_OF_RANGE += [("--learning-rate", v) for v in ["nan", "inf", "0", "-1"]]
OUT_OF_RANGE += [("--steps-per-execution", "0")]
OUT_OF_RANGE += [("--seed", "-1"), ("--seed", str(2**32))]  # NumPy's: 0..2**32-1


@pytest.mark.parametrize("flag, value", OUT_OF_RANGE)
def test_a_value_out_of_range_is_refused_naming_the_flag_and_value(
    capsys, toy_root, tmp_path, flag, value
):
    argv = run_args(toy_root, tmp_path / "out", flag, value)
    fails_with(capsys, argv, flag, f"got {value}")


def test_a_wrong_flag_is_named_before_a_folder_that_holds_a_run(capsys, tmp_path):
    out = fake_run(tmp_path / "out", 1)  # the quick start's outputs/, say
    argv = ["--temporal-smoothing", "0.5", "--output-dir", out]
    fails_with(capsys, argv, "--temporal-smoothing steadies --predict")


def test_more_than_one_step_per_call_on_pytorch_is_refused(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(cli.UserError, match="--steps-per-execution 4 needs JAX or"):
        cli.check_args(parse("--steps-per-execution", "4"))


def test_fewer_training_images_than_a_batch_are_refused_in_training_alone():
    few = ["--num-train-images", "2", "--batch-size", "4"]
    with pytest.raises(cli.UserError, match="no full batch could be formed"):
        cli.check_args(parse(*few))
    cli.check_args(parse("--evaluate", "model.keras", *few))  # it trains nothing


MALFORMED = [(["--image-size", "abc"], "invalid int value: 'abc'")]
MALFORMED += [(["--tta", "mirror"], "invalid choice: 'mirror'")]
MALFORMED += [(["--no-such-flag"], "unrecognized arguments: --no-such-flag")]
MALFORMED += [(["--predict"], "expected at least one argument")]


@pytest.mark.parametrize("argv, phrase", MALFORMED)
def test_a_malformed_flag_is_one_error_line_not_the_usage(capsys, argv, phrase):
    fails_with(capsys, argv, phrase, "--help")


@pytest.mark.parametrize("flag", ["--freeze-backbone", "--loss dice", "--keep-aspect"])
def test_a_training_flag_outside_training_is_refused(capsys, tmp_path, flag):
    argv, phrase = ["--predict", tmp_path, *flag.split()], flag.split()[0]
    fails_with(capsys, argv, f"{phrase} shapes training")


@pytest.mark.parametrize("flag", ["--output-dir", "--data-dir", "--model"])
def test_an_empty_path_is_refused_not_taken_as_the_current_folder(capsys, flag):
    fails_with(capsys, ["--predict", "photo.jpg", flag, ""], f"{flag}: an empty path")


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
    fails_with(capsys, argv, "to start training from a saved model", "as --weights")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_unknown_backend_is_one_error_line(tmp_path):
    result = run_python(ROOT / "deeplabv3_plus.py", exit_code=2, KERAS_BACKEND="jx")
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "KERAS_BACKEND to jax, tensorflow or torch" in result.stderr


def test_tensorboard_that_does_not_import_says_how_to_install_it(
    capsys, toy_root, tmp_path, monkeypatch
):
    broken = tmp_path / "site" / "tensorboard"  # found, but fails to import
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('protobuf is too new')")
    monkeypatch.syspath_prepend(broken.parent)
    monkeypatch.delitem(sys.modules, "tensorboard", raising=False)
    argv = run_args(toy_root, tmp_path / "out", "--tensorboard")
    fails_with(capsys, argv, "--tensorboard needs the tensorboard package", "pip")
