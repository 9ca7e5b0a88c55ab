"""Inference latency per image: Keras against ONNX Runtime, same model, same run.

Builds an untrained DeepLabV3+ (weights do not change the speed), saves it as
.keras, exports it with `--export onnx` and `--export saved_model`, and prints one
JSON line: the exported sizes and the median batch-1 latency of Keras
(`predict_on_batch`) and of an ONNX Runtime session on the CPU.

    python benchmarks/export_latency.py --image-size 512 --repeats 10
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import deeplabv3_plus as tutorial  # noqa: E402
from deeplab_support import datasets, export  # noqa: E402


def median_seconds(predict, image, repeats):
    """The median time of `repeats` calls, after one warm-up call."""
    predict(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(image_size, repeats):
    """Export an untrained model, time both runtimes, print one JSON line."""
    import onnxruntime

    folder = Path(tempfile.mkdtemp())
    model = tutorial.DeeplabV3Plus(image_size, datasets.CIHP.num_classes)
    model.save(folder / "model.keras")
    sizes = {"keras_mb": export.size_mb(folder / "model.keras")}
    for fmt in export.FORMATS:
        build = tutorial.DeeplabV3Plus
        path = export.export_model(model, fmt, folder, build, datasets.CIHP)
        sizes[f"{fmt}_mb"] = export.size_mb(path)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    image = np.random.default_rng(0).uniform(0, 255, (1, image_size, image_size, 3))
    image = image.astype(np.float32)
    keras_s = median_seconds(model.predict_on_batch, image, repeats)
    onnx_s = median_seconds(lambda x: session.run(None, {"image": x}), image, repeats)
    result = dict(image_size=image_size, **sizes, keras_ms=keras_s * 1000)
    print(json.dumps(dict(result, onnxruntime_ms=onnx_s * 1000), default=float))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=512, help="input side")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls")
    main(**vars(parser.parse_args()))
