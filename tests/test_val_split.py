"""--val-split: the files after the training ones, or CIHP's official Validation/."""

import argparse
import json
import shutil

import pytest

from conftest import fails_with, run_tutorial
from deeplab_support import UserError, files


def split_args(val_split, num_train=8, num_val=4):
    """The flags that get_pairs reads."""
    return argparse.Namespace(
        val_split=val_split, num_train_images=num_train, num_val_images=num_val
    )


def test_official_split_reads_the_validation_folder(toy_root):
    train, val = files.get_pairs(toy_root, split_args("official"))
    assert len(train) == 8 and len(val) == 4
    assert all("Validation" in str(image) for image, _ in val)


def test_official_split_leaves_all_training_files_to_training(toy_root):
    train, val = files.get_pairs(toy_root, split_args("official", num_train=16))
    assert len(train) == 16 and len(val) == 4


def test_train_tail_takes_the_files_after_the_training_ones(toy_root):
    train, val = files.get_pairs(toy_root, split_args("train-tail"))
    assert [p for p, _ in val] == [
        str(p) for p, _ in files.list_pairs(toy_root, 8, 4)[1]
    ]


def test_official_split_without_the_folder_says_what_to_do(cihp_copy):
    shutil.rmtree(cihp_copy / "Validation")
    with pytest.raises(UserError, match="--val-split train-tail"):
        files.get_pairs(cihp_copy, split_args("official"))


@pytest.mark.slow
def test_evaluate_on_the_official_split_at_the_model_s_size(
    tiny_run, toy_root, tmp_path
):
    argv = ["--evaluate", tiny_run / "model.keras", "--data-dir", toy_root]
    argv += ["--val-split", "official", "--num-train-images", "8"]
    argv += ["--num-val-images", "4", "--image-size", "96", "--output-dir", tmp_path]
    run_tutorial(*argv)
    scores = json.loads((tmp_path / "evaluation.json").read_text())
    assert 0 <= scores["mean_iou"] <= 1


def test_evaluate_a_missing_model(capsys, toy_root, tmp_path):
    argv = ["--evaluate", tmp_path / "none.keras", "--data-dir", toy_root]
    fails_with(capsys, argv, "does not exist", "--evaluate")
