"""Load a .keras model on the current backend; save its logits.

Usage: python predict_classes.py MODEL.keras OUT.npy
The model is a plain Keras model: nothing of this project is imported.
"""

import sys

import keras
import numpy as np

model = keras.saving.load_model(sys.argv[1])
images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
np.save(sys.argv[2], keras.ops.convert_to_numpy(model.predict_on_batch(images)))
assert not {"deeplabv3_plus", "deeplab_support"} & set(sys.modules)
