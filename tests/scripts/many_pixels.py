"""Count one step of 2**24 + 4096 pixels of one class on the current backend.

Past 2**24 a float32 count stops adding 1s, so a count in floats comes out short.
Prints the confusion matrix that the compiled MeanIoU counted, NumPy's, and the
mean IoU.
"""

import json

import keras
import numpy as np

import deeplabv3_plus as dl

height, width = 4097, 4096  # 2**24 + 4096 pixels in one batch of one image
labels = np.ones((1, height, width, 1), "uint8")  # all Hat (1) ...
labels[0, :8, :8] = 0  # ... but for a corner of Background
logits = np.zeros((1, height, width, 2), "float32")
logits[..., 1] = 1.0  # predicts Hat everywhere ...
logits[0, :4, :4] = [1.0, 0.0]  # ... but in a smaller corner
weights = np.ones((1, height, width), "uint8")
weights[0, -1, -3:] = 0  # three void pixels count nowhere
model = keras.Sequential([keras.Input((height, width, 2)), keras.layers.Identity()])
dl.compile_model(model, keras.optimizers.Adam(), 2)  # the model's output: its input
scores = model.evaluate(
    logits, labels, sample_weight=weights, batch_size=1, return_dict=True, verbose=0
)
counted = model.metrics[-1].metrics[-1]  # the compiled MeanIoU
found = np.asarray(counted.high, "int64") * 2**24 + np.asarray(counted.low, "int64")
keep = weights.ravel() > 0
pairs = labels.ravel()[keep] * 2 + logits.argmax(-1).ravel()[keep]
expected = np.bincount(pairs, minlength=4)
print(json.dumps(dict(found=found.tolist(), expected=expected.tolist(), **scores)))
