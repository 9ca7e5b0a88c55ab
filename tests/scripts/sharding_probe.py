"""Train one epoch on JAX with --distribute's data parallelism; report its shards.

Usage: python sharding_probe.py DATA_ROOT
Prints one JSON line: the device count, the loss, and the shard shapes (and the
number of devices holding them) that the training step saw.
"""

import json
import sys

import jax
import keras

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


data = datasets.find(sys.argv[1])
train = files.check_pairs(data.train[:8], data.classes)
dataset = dl.data_generator(train, 64, 8, data.classes)
with devices.distribution_scope(True, 8):
    deeplab = dl.DeeplabV3Plus(64, 20)
    model = keras.Sequential([keras.Input((64, 64, 3)), ShardingProbe(), deeplab])
    dl.compile_model(model, dl.make_optimizer(1e-3, "constant", 1), 20)
history = model.fit(dataset, epochs=1, verbose=0)
report = dict(devices=len(jax.devices()), loss=history.history["loss"][0])
print(json.dumps(dict(report, shard_shapes=shard_shapes)))
