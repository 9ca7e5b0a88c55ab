"""Score fixed logits against masks with void pixels, on the current Keras backend.

Prints one JSON list: the loss and metrics for the logits, for the same logits
changed only on void pixels, and for them changed on valid pixels.
"""

import json

import keras
import numpy as np

import deeplabv3_plus as dl
from deeplab_support.classes import VOID

rng = np.random.default_rng(0)
masks = rng.integers(0, 3, (2, 8, 8, 1)).astype("uint8")
masks[:, :3] = VOID  # the top three rows of each mask are void
images = np.zeros((2, 8, 8, 3), "uint8")
_, labels, weights = (np.asarray(t) for t in dl.ignore_void(images, masks, VOID))
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Identity()])
dl.compile_model(model, keras.optimizers.Adam(), 3)  # the model's output: its input
logits = rng.normal(size=(2, 8, 8, 3)).astype("float32")
on_void, on_valid = logits.copy(), logits.copy()
on_void[:, :3] = rng.normal(size=(2, 3, 8, 3)) * 10
on_valid[:, 3:] = rng.normal(size=(2, 5, 8, 3)) * 10
scores = [
    model.evaluate(x, labels, sample_weight=weights, return_dict=True, verbose=0)
    for x in (logits, on_void, on_valid)
]
print(json.dumps([{k: float(v) for k, v in s.items()} for s in scores]))
