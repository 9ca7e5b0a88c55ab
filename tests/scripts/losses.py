"""Every --loss on fixed logits, on the current Keras backend, through `fit`'s path.

Prints one JSON object: the "masks" (void included) and "logits", "values": each
loss (and each class-weighted one) of the logits against the masks, and the Dice
loss of a perfect prediction; "scores": per loss, the loss and metrics that
`evaluate` reports for the logits, for them changed only on void pixels, and
changed on valid pixels.
"""

import json

import keras
import numpy as np

import deeplabv3_plus as dl
from deeplab_support import metrics
from deeplab_support.classes import VOID

rng = np.random.default_rng(0)
masks = rng.integers(0, 3, (2, 8, 8, 1)).astype("uint8")
masks[:, :3] = VOID  # the top three rows of each mask are void
images = np.zeros((2, 8, 8, 3), "uint8")
_, labels, weights = (np.asarray(t) for t in dl.ignore_void(images, masks, VOID))
logits = rng.normal(size=(2, 8, 8, 3)).astype("float32")
class_weights = [0.5, 2.0, 1.0]

values = {}
for kind in metrics.LOSSES:
    for weighted in [None, class_weights]:
        loss = dl.make_loss(kind, weighted)
        name = kind + (" weighted" if weighted else "")
        values[name] = float(loss(labels, logits, sample_weight=weights))
perfect = 100.0 * np.eye(3, dtype="float32")[np.where(masks == VOID, 0, masks)[..., 0]]
values["dice perfect"] = float(dl.make_loss("dice")(labels, perfect, weights))

model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Identity()])
on_void, on_valid = logits.copy(), logits.copy()
on_void[:, :3] = rng.normal(size=(2, 3, 8, 3)) * 10
on_valid[:, 3:] = rng.normal(size=(2, 5, 8, 3)) * 10
scores = {}
for kind in metrics.LOSSES:  # the model's output: its input
    dl.compile_model(model, keras.optimizers.Adam(), 3, dl.make_loss(kind))
    scores[kind] = [
        model.evaluate(x, labels, sample_weight=weights, return_dict=True, verbose=0)
        for x in (logits, on_void, on_valid)
    ]
inputs = {"masks": masks.tolist(), "logits": logits.tolist()}
print(json.dumps({"values": values, "scores": scores, **inputs}, default=float))
