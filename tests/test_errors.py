"""User errors: one `error: ...` line on stderr, exit code 2, no traceback."""

import subprocess
import sys

import pytest

from conftest import ROOT, TINY, fails_with, run_args
from deeplab_support import UserError, devices, files


def test_missing_data_folder(capsys, tmp_path):
    fails_with(
        capsys, run_args(tmp_path / "nowhere", tmp_path / "out"), "does not exist"
    )


def test_empty_image_folder(capsys, tmp_path):
    (tmp_path / "cihp" / "Training" / "Images").mkdir(parents=True)
    fails_with(capsys, run_args(tmp_path / "cihp", tmp_path / "out"), "no .jpg or .png")


def test_images_without_masks_are_named_and_counted(capsys, cihp_copy, tmp_path):
    masks = sorted((cihp_copy / "Training" / "Category_ids").glob("*.png"))
    for mask in masks[:2]:
        mask.unlink()
    err = fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), "2 of 16")
    assert masks[0].stem in err and masks[1].stem in err


def test_fewer_images_than_asked_for(capsys, toy_root, tmp_path):
    argv = run_args(toy_root, tmp_path / "out", "--num-train-images", "40")
    fails_with(capsys, argv, "has 16 training images", "--num-train-images")


@pytest.mark.parametrize("size", ["100", "0", "-32"])
def test_bad_image_size(capsys, toy_root, tmp_path, size):
    argv = run_args(toy_root, tmp_path / "out", "--image-size", size)
    fails_with(capsys, argv, "--image-size")


@pytest.mark.parametrize("flag", ["--batch-size", "--epochs", "--num-val-images"])
def test_non_positive_counts(capsys, toy_root, tmp_path, flag):
    fails_with(capsys, run_args(toy_root, tmp_path / "out", flag, "0"), flag)


@pytest.mark.parametrize("rate", ["nan", "inf", "0", "-1"])
def test_learning_rate_must_be_a_positive_number(capsys, toy_root, tmp_path, rate):
    argv = run_args(toy_root, tmp_path / "out", "--learning-rate", rate)
    fails_with(capsys, argv, "--learning-rate")


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


def test_output_dir_that_is_a_file(capsys, toy_root, tmp_path):
    (tmp_path / "file").write_text("")
    fails_with(capsys, run_args(toy_root, tmp_path / "file"), "is a file")


def test_output_dir_that_cannot_be_created(capsys, toy_root, tmp_path):
    (tmp_path / "file").write_text("")
    fails_with(capsys, run_args(toy_root, tmp_path / "file" / "out"), "--output-dir")


def test_exit_code_and_one_line_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "deeplabv3_plus.py"), "--image-size", "100"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: --image-size")
    assert len(result.stderr.strip().splitlines()) == 1  # no library log lines


def test_download_without_network_says_what_to_do(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CIHP_URL", "http://127.0.0.1:9/cihp.zip")
    argv = ["--download", "--data-dir", str(tmp_path / "cihp")]
    argv += ["--output-dir", str(tmp_path / "out"), *TINY]
    fails_with(capsys, argv, "could not download CIHP", "--data-dir")


def test_distribute_on_an_unsupported_backend_says_which_to_use(monkeypatch):
    monkeypatch.setattr(devices.keras.backend, "backend", lambda: "torch")
    with pytest.raises(UserError, match="KERAS_BACKEND=jax"):
        devices.distribution_scope(True, 8)


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
