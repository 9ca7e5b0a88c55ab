"""Score fixed logits whose pixels weigh 3e8 each, on the current Keras backend.

Each cell of the confusion matrix then counts more than 2**31 pixels, as a long
epoch of large images does. Prints the mean IoU that Keras reports and the one
counted by NumPy.
"""

import json

import keras
import numpy as np

import deeplabv3_plus as dl

rng = np.random.default_rng(0)
labels = rng.integers(0, 3, (2, 8, 8, 1)).astype("uint8")
logits = rng.normal(size=(2, 8, 8, 3)).astype("float32")
weights = np.full((2, 8, 8), 3e8, "float32")  # each pixel stands for 3e8 pixels
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Identity()])
dl.compile_model(model, keras.optimizers.Adam(), 3)  # the model's output: its input
found = model.evaluate(
    logits, labels, sample_weight=weights, return_dict=True, verbose=0
)["mean_iou"]
truth, predicted = labels.ravel(), logits.argmax(-1).ravel()
ious = [
    np.sum((truth == c) & (predicted == c)) / np.sum((truth == c) | (predicted == c))
    for c in range(3)
]
print(json.dumps({"found": float(found), "expected": float(np.mean(ious))}))
