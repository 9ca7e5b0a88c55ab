"""--val-split: the files after the training ones, or CIHP's official Validation/."""

import json
import shutil

import pytest

from conftest import run_tutorial, split
from deeplab_support import UserError


def test_official_split_validates_on_its_folder_and_trains_on_all_the_rest(toy_root):
    train, val = split(toy_root, 16, 4, "official")  # all 16 training images
    assert len(train) == 16 and len(val) == 4
    assert all("Validation" in str(image) for image, _ in val)


def test_train_tail_takes_the_files_after_the_training_ones(toy_root):
    _, val = split(toy_root, 8, 4, "train-tail")
    images = sorted((toy_root / "Training" / "Images").iterdir())
    assert [p for p, _ in val] == images[8:12]


def test_official_split_without_the_folder_says_what_to_do(cihp_copy):
    shutil.rmtree(cihp_copy / "Validation")
    with pytest.raises(UserError, match="--val-split train-tail"):
        split(cihp_copy, 8, 4, "official")


def test_official_split_with_fewer_images_than_asked_says_how_many_it_has(toy_root):
    available = len(list((toy_root / "Validation" / "Images").iterdir()))
    with pytest.raises(UserError, match=f"has {available} validation images"):
        split(toy_root, 8, available + 1, "official")


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
