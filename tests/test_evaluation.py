"""Evaluation at full resolution: scores from one confusion matrix, logits resized
in bounded memory, and --evaluate on a saved model."""

import json

import cv2
import numpy as np
import pytest

from conftest import fails_with, run_tutorial
from deeplab_support import metrics
from deeplab_support.classes import CIHP


def test_banded_upsampling_matches_a_whole_image_resize():
    logits = np.random.default_rng(0).normal(size=(16, 12, CIHP.num_classes))
    logits = logits.astype(np.float32)
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


def test_evaluate_scores_a_saved_model_at_full_resolution(tiny_run, toy_root, tmp_path):
    argv = ["--evaluate", tiny_run / "model.keras", "--data-dir", toy_root]
    argv += ["--output-dir", tmp_path, "--num-train-images", 8, "--num-val-images", 4]
    run_tutorial(*argv)
    scores = json.loads((tmp_path / "evaluation.json").read_text())
    keys = {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"}
    assert keys <= set(scores) and 0 <= scores["pixel_accuracy"] <= 1
    assert list(scores["per_class_iou"]) == list(CIHP.names)
    assert (tmp_path / "per_class_iou.png").is_file()
    assert (tmp_path / "confusion_matrix.png").is_file()


def test_evaluate_a_missing_model(capsys, toy_root, tmp_path):
    argv = ["--evaluate", tmp_path / "none.keras", "--data-dir", toy_root]
    fails_with(capsys, argv, "does not exist", "--evaluate")
