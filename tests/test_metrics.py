"""Scores from one confusion matrix, and logits resized in bounded memory."""

import cv2
import numpy as np

from deeplab_support import metrics
from deeplab_support.datasets import CIHP

NUM_CLASSES = CIHP.num_classes


def test_banded_upsampling_matches_a_whole_image_resize():
    logits = np.random.default_rng(0).normal(size=(16, 12, NUM_CLASSES))
    logits = logits.astype(np.float32)
    expected = np.argmax(cv2.resize(logits, (701, 997)), axis=-1)
    found = metrics.upsample_argmax(logits, (997, 701), band=64)
    assert (found == expected).mean() >= 0.9999


def test_confusion_matrix_counts_in_chunks(monkeypatch):
    labels = np.random.default_rng(1).integers(0, 5, size=1000)
    whole = metrics.confusion_matrix(labels, labels[::-1], 5)
    monkeypatch.setattr(metrics, "CHUNK", 7)
    assert (metrics.confusion_matrix(labels, labels[::-1], 5) == whole).all()
