"""Train one epoch on JAX on one device, then data-parallel; report both.

Usage: python sharding_probe.py DATA_ROOT
Prints one JSON line: each run's loss and the shard shapes its train step saw.
"""

import json
import sys

import jax
import keras
import numpy as np

import deeplabv3_plus as dl
from deeplab_support import datasets, devices, files

shard_shapes = []


class ShardingProbe(keras.layers.Layer):
    """Record how the input batch is laid out over devices inside the train step."""

    def call(self, images):
        jax.debug.inspect_array_sharding(
            images,
            callback=lambda s: shard_shapes.append(
                [list(s.shard_shape(images.shape)), len(s.device_set)]
            ),
        )
        return images


def train_one_epoch(root, distribute):
    """Train one epoch from the same seed; return loss, logits and shard shapes."""
    shard_shapes.clear()
    keras.utils.set_random_seed(0)
    data = datasets.find(root)
    train = files.check_pairs(data.train[:8], data.classes)
    dataset = dl.data_generator(train, 64, 8, data.classes, training=False)
    with devices.distribution_scope(distribute, 8):
        deeplab = dl.DeeplabV3Plus(64, 20)
        model = keras.Sequential([keras.Input((64, 64, 3)), ShardingProbe(), deeplab])
        dl.compile_model(model, dl.make_optimizer(1e-3, "constant", 1), 20)
    history = model.fit(dataset, epochs=1, verbose=0)
    logits = np.asarray(model.predict_on_batch(next(iter(dataset))[0].numpy()))
    return {
        "loss": history.history["loss"][0],
        "logits_mean": float(logits.mean()),
        "shard_shapes": list(shard_shapes),
    }


single = train_one_epoch(sys.argv[1], distribute=False)  # before any distribution
shared = train_one_epoch(sys.argv[1], distribute=True)
print(json.dumps({"devices": len(jax.devices()), "single": single, "shared": shared}))
