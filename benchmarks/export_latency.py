"""Exported files against Keras: size, CPU latency per image and agreement.

Exports a model with every `--export` format (`--model`, or an untrained
DeepLabV3+, whose weights do not change the speed), then prints one JSON line per
runtime: the file's size, the median batch-1 latency after a warm-up, and how
closely its logits follow Keras's on eight synthetic people (largest logit
difference, share of pixels given the same class); for a parser, the share of
pixels given the class that --predict gives them, at each photo's own size.
Agreement says something only for a trained model.

    python benchmarks/export_latency.py --image-size 512 --repeats 10
    python benchmarks/export_latency.py --model outputs/model.keras
"""

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import deeplabv3_plus as tutorial  # noqa: E402
from data import make_toy_people  # noqa: E402
from deeplab_support import UserError, cli, export, files  # noqa: E402
from deeplab_support.classes import CIHP  # noqa: E402


def median_seconds(predict, image, repeats):
    """The median time of `repeats` calls, after one warm-up call."""
    predict(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def runtimes(folder):
    """A batch-1 predict function for each exported file that a runtime runs."""
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    predict = {"onnx": lambda x: session.run(None, {"image": x})[0]}
    for fmt in ["litert", "litert_quantized"]:
        path = str(folder / export.FORMATS[fmt])  # all cores, as Keras and ORT use
        runner = Interpreter(path, num_threads=os.cpu_count()).get_signature_runner()
        predict[fmt] = lambda x, run=runner: run(image=x)["output_0"]
    parser = onnxruntime.InferenceSession(str(folder / "parser.onnx"))
    predict["onnx_parser"] = lambda x: parser.run(None, {"photo": x})[0]
    path = str(folder / export.FORMATS["litert_parser"])
    runner = Interpreter(path, num_threads=os.cpu_count()).get_signature_runner()
    predict["litert_parser"] = lambda x: next(iter(runner(photo=x).values()))
    return predict


def people(size, count=8):
    """Synthetic people at the model's input size, as a float32 batch."""
    images = [make_toy_people.render_sample(3, i)[0] for i in range(count)]
    return np.stack([cv2.resize(image, (size, size)) for image in images]).astype(
        np.float32
    )


def main(image_size, repeats, model_path):
    """Export, time and compare every runtime; print one JSON line each."""
    folder = files.private_dir("export-latency")  # deleted when the process ends
    if model_path:
        model, classes = cli.load_model(model_path, "--model")
    else:
        model, classes = tutorial.DeeplabV3Plus(image_size, 20), CIHP
    model.save(folder / "model.keras")
    sizes = {"keras": export.size_mb(folder / "model.keras")}
    for fmt in export.FORMATS:
        path = export.export_model(model, fmt, folder, classes)
        sizes[fmt] = export.size_mb(path)
    size = model.input_shape[1]
    image = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3))
    image = image.astype(np.float32)
    batch = people(size)
    reference = np.asarray(model.predict_on_batch(batch))
    keras_ms = median_seconds(model.predict_on_batch, image, repeats) * 1000
    print(json.dumps(dict(runtime="keras", size_mb=sizes["keras"], ms=keras_ms)))
    photos = [make_toy_people.render_sample(3, i)[0] for i in range(8)]
    expected = [tutorial.predict_full_resolution([model], photo) for photo in photos]
    for fmt, predict in runtimes(folder).items():
        row = dict(runtime=fmt, size_mb=sizes[fmt])
        if fmt.endswith("_parser"):  # a photo at its own size in, class ids out
            ids = [predict(photo[None])[0] for photo in photos]
            same = np.mean([np.mean(a == b) for a, b in zip(ids, expected)])
            row["ms"] = median_seconds(predict, image.astype(np.uint8), repeats) * 1000
            row["same_class_as_predict"] = float(same)
            print(json.dumps(row), flush=True)
            continue
        logits = np.concatenate([predict(photo[None]) for photo in batch])
        row["ms"] = median_seconds(predict, image, repeats) * 1000
        row["max_logit_difference"] = float(np.abs(logits - reference).max())
        row["same_class"] = float(np.mean(logits.argmax(-1) == reference.argmax(-1)))
        print(json.dumps(row), flush=True)
    print(json.dumps(dict(runtime="saved_model", size_mb=sizes["saved_model"])))


if __name__ == "__main__":
    parser = cli.Parser(description=__doc__.splitlines()[0])
    size = cli.checked(
        int, lambda v: v >= 32 and v % 16 == 0, "must be 32, 48... got {}"
    )
    parser.add_argument("--image-size", type=size, default=512, help="input side")
    parser.add_argument("--repeats", type=cli.positive(int), default=10, help="timed")
    parser.add_argument("--model", dest="model_path", help="a trained .keras model")
    try:
        main(**vars(parser.parse_args()))
    except UserError as error:
        sys.exit(cli.explain(error))
