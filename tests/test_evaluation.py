"""Evaluation at full resolution: scores from one confusion matrix, logits resized
in bounded memory, and --evaluate on a saved model."""

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import fails_with, run_args, run_tutorial
from deeplab_support import files, metrics
from deeplab_support.classes import CIHP


def test_banded_upsampling_matches_a_whole_image_resize():
    logits = np.random.default_rng(0).normal(size=(16, 12, 20)).astype(np.float32)
    expected = np.argmax(cv2.resize(logits, (701, 997)), axis=-1)
    found = metrics.upsample_argmax(logits, (997, 701), band=64)
    assert (found == expected).mean() >= 0.9999


def test_confusion_matrix_counts_in_chunks(monkeypatch):
    labels = np.random.default_rng(1).integers(0, 5, size=1000)
    whole = metrics.confusion_matrix(labels, labels[::-1], 5)
    monkeypatch.setattr(metrics, "CHUNK", 7)
    assert (metrics.confusion_matrix(labels, labels[::-1], 5) == whole).all()


def test_metrics_match_a_hand_computed_confusion_matrix():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 0, 1, 1, 1, 2, 0])
    matrix = metrics.confusion_matrix(labels, predictions, 4)
    np.testing.assert_array_equal(matrix[:3, :3], [[3, 1, 0], [0, 2, 0], [1, 0, 1]])
    scores = metrics.segmentation_metrics(matrix, ["a", "b", "c", "d"])
    iou = {"a": 3 / 5, "b": 2 / 3, "c": 1 / 2, "d": None}  # d: never seen, no IoU
    assert scores["per_class_iou"] == pytest.approx(iou)
    assert scores["pixel_accuracy"] == pytest.approx(6 / 8)
    assert scores["mean_accuracy"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    assert scores["mean_iou"] == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)
    weighted = 4 / 8 * 3 / 5 + 2 / 8 * 2 / 3 + 2 / 8 * 1 / 2
    assert scores["frequency_weighted_iou"] == pytest.approx(weighted)


def test_the_training_scores_count_as_the_full_resolution_ones():
    labels = np.array([[0, 0, 0, 0, 1, 1, 2, 2, 3]])  # the last pixel: void
    logits = np.eye(4)[[0, 0, 0, 1, 1, 1, 2, 0, 3]][None]  # as the test above
    weights = np.array([[1, 1, 1, 1, 1, 1, 1, 1, 0]])
    mean_iou, accuracy = metrics.MeanIoU(4), metrics.PixelAccuracy(4)
    for metric in (mean_iou, accuracy):
        metric.update_state(labels, logits, sample_weight=weights)
    # Class 3, in neither truth nor predictions once void is left out, has no IoU.
    assert float(mean_iou.result()) == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)
    assert float(accuracy.result()) == pytest.approx(6 / 8)


def test_evaluate_scores_a_saved_model_at_full_resolution(
    tiny_run, cihp_copy, tmp_path
):
    images = sorted((cihp_copy / "Training" / "Images").glob("*.jpg"))[8:12]
    exif = Image.Exif()
    exif[files.EXIF_ORIENTATION] = 2  # mirrored: read through a private copy
    Image.open(images[0]).save(images[0], exif=exif)
    for folder, end in [("Images", ".jpg"), ("Category_ids", ".png")]:  # not UTF-8
        path = cihp_copy / "Training" / folder / f"{images[1].stem}{end}"
        path.rename(path.with_name(os.fsdecode(os.fsencode(path.stem) + b"\xff") + end))
    images[1] = images[1].with_name(images[1].stem + "\\xff.jpg")  # shown escaped
    argv = ["--evaluate", tiny_run / "model.keras", "--data-dir", cihp_copy]
    argv += ["--output-dir", tmp_path, "--num-train-images", 8, "--num-val-images", 4]
    run_tutorial(*argv)
    scores = json.loads((tmp_path / "evaluation.json").read_text())
    assert [s["image"] for s in scores["per_image"]] == list(map(str, images))
    keys = {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"}
    assert keys <= set(scores) and 0 <= scores["pixel_accuracy"] <= 1
    assert list(scores["per_class_iou"]) == list(CIHP.names)
    assert (tmp_path / "per_class_iou.png").is_file()
    assert (tmp_path / "confusion_matrix.png").is_file()
    per_image = scores["per_image"]
    assert len(per_image) == 4 and all(0 <= s["mean_iou"] <= 1 for s in per_image)
    worst = Image.open(tmp_path / "worst_val.png")  # four rows: every image scored
    assert worst.height > 3 * worst.width / 3


def test_each_image_is_scored_over_the_classes_of_its_own_truth():
    per_image, ids = metrics.PerImage(CIHP), np.zeros((2, 2), np.uint8)
    photo = np.zeros((2, 2, 3), np.uint8)
    # Truth: 4 of class 0 (3 right, 1 taken for 1), 2 of class 1; class 2 only guessed.
    per_image.add("a.png", np.array([[3, 1, 0], [0, 1, 1], [0, 0, 0]]), photo, ids, ids)
    found = per_image.scores[0]
    assert found["pixel_accuracy"] == pytest.approx(4 / 6)
    assert found["mean_iou"] == pytest.approx((3 / 4 + 1 / 3) / 2)  # not class 2


def test_the_five_worst_images_are_kept_lowest_first():
    per_image, ids = metrics.PerImage(CIHP), np.zeros((2, 2), np.uint8)
    photo = np.zeros((2, 2, 3), np.uint8)
    for name, right in zip("abcdefg", [5, 1, 4, 0, 6, 2, 3]):
        counts = np.array([[right, 6 - right], [0, 0]])
        per_image.add(f"{name}.png", counts, photo, ids, ids)
    assert [worst[2] for worst in per_image.worst] == [f"{n}.png" for n in "dbfgc"]


@pytest.mark.parametrize("folder", ["new", "the user's"])
def test_evaluate_a_missing_model_leaves_no_trace(capsys, toy_root, tmp_path, folder):
    if folder != "new":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "notes.txt").write_text("mine")
    argv = ["--evaluate", tmp_path / "none.keras", "--data-dir", toy_root]
    argv += ["--output-dir", tmp_path / "out"]  # claimed before the model is read
    fails_with(capsys, argv, "does not exist", "--evaluate")
    left = sorted(p.name for p in tmp_path.joinpath("out").glob("*"))
    assert left == ([] if folder == "new" else ["notes.txt"])  # no run.json
    assert (tmp_path / "out").exists() == (folder != "new")


@pytest.mark.slow
def test_a_mixed_precision_run_publishes_the_scores_that_evaluate_gives(
    toy_root, tmp_path
):
    run_tutorial(*run_args(toy_root, tmp_path, "--precision", "mixed_bfloat16"))
    published = json.loads((tmp_path / "evaluation.json").read_text())
    argv = ["--evaluate", tmp_path / "model.keras", "--data-dir", toy_root]
    counts = ["--num-train-images", 8, "--num-val-images", 4]  # as run_args
    run_tutorial(*argv, *counts, "--output-dir", tmp_path / "again")
    again = json.loads((tmp_path / "again" / "evaluation.json").read_text())
    assert again["per_class_iou"] == published["per_class_iou"]  # float32 alike
    assert "| precision | mixed_bfloat16 |" in (tmp_path / "README.md").read_text()
