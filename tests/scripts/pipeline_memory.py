"""Resident memory of a fresh process after each of four epochs of the pipeline.

Usage: python pipeline_memory.py PAIRS.json IMAGE_SIZE cache|no-cache
Prints a JSON list: the memory before the first epoch, then after each epoch.
"""

import gc
import json
import sys
from pathlib import Path

import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import deeplabv3_plus as dl  # noqa: E402
from deeplab_support.classes import CIHP  # noqa: E402


def resident_bytes():
    """This process's resident memory, read from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


pairs = json.loads(Path(sys.argv[1]).read_text())
epoch = tf.Variable(0, dtype="int64")
cache = sys.argv[3] == "cache"
dataset = dl.data_generator(pairs, int(sys.argv[2]), 50, CIHP, epoch, True, cache)
readings = [resident_bytes()]
for number in range(4):
    epoch.assign(number)
    for _ in dataset:
        pass
    gc.collect()
    readings.append(resident_bytes())
print(json.dumps(readings))
