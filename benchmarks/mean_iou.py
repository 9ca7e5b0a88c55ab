"""Time one mean-IoU update and check its count, ours against Keras's MeanIoU.

    python benchmarks/mean_iou.py                  # on TensorFlow
    KERAS_BACKEND=torch python benchmarks/mean_iou.py
    KERAS_BACKEND=jax python benchmarks/mean_iou.py

One JSON line per metric: the seconds of one eager `update_state` on a batch of 16
images at 512x512 with 20 classes (4.2 M pixels; Keras's on PyTorch gets 65,536
pixels, as it loops over them in Python), and the count it keeps for a class of
2**24 + 4096 pixels after one update (exact: 16781312).
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deeplab_support import metrics  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

NUM_CLASSES = 20  # CIHP's
BATCH = (16, 512, 512)  # the tutorial's size, at batch 16
MANY = 2**24 + 4096  # more pixels of one class than float32 counts one by one


def time_update(metric, pixels):
    """Seconds of one update on `pixels` random pixels, after one to warm up."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, (pixels, 1)).astype("uint8")
    logits = rng.normal(size=(pixels, NUM_CLASSES)).astype("float32")
    weights = np.ones(pixels, "uint8")
    metric.update_state(labels[:16], logits[:16], weights[:16])
    start = time.perf_counter()
    metric.update_state(labels, logits, weights)
    float(metric.result())  # waits for the device
    return time.perf_counter() - start


def count_many(metric, counted):
    """One update of MANY pixels of class 1, all predicted right: its count."""
    labels = np.ones((MANY, 1), "uint8")
    logits = np.zeros((MANY, 2), "float32")
    logits[:, 1] = 1
    metric.update_state(labels, logits, np.ones(MANY, "uint8"))
    return int(counted(metric)[1, 1])


def main():
    backend = keras.backend.backend()
    pixels = int(np.prod(BATCH))
    keras_pixels = 65536 if backend == "torch" else pixels
    cases = [
        ("ours", metrics.MeanIoU, pixels, lambda m: np.asarray(m.matrix())),
        (
            "keras",
            lambda n: keras.metrics.MeanIoU(n, sparse_y_pred=False, dtype="float64"),
            keras_pixels,
            lambda m: np.asarray(m.total_cm),
        ),
    ]
    for name, make, size, counted in cases:
        seconds = time_update(make(NUM_CLASSES), size)
        many = None if size < pixels else count_many(make(2), counted)
        record = dict(backend=backend, metric=name, pixels=size)
        record.update(seconds=round(seconds, 4), count_of_16781312=many)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help
    main()
