"""Export a trained model for use without Keras: ONNX, SavedModel or LiteRT.

All are written with Keras's own `model.export`. Like the .keras files it comes
from, the exported graph computes in float32; it takes one input, a batch of raw
0..255 RGB pixels at the model's own input size (`image`, shape (batch, size, size, 3)), and returns the
logits of every class per pixel. `litert_quantized` stores the weights in 8 bits
(the converter's dynamic-range quantisation); the activations stay float32.
"""

import os
from pathlib import Path

import keras

from deeplab_support import UserError, runs
from deeplab_support.classes import onnx_metadata

FORMATS = {  # --export format: the file it writes
    "onnx": "model.onnx",
    "saved_model": "saved_model",
    "litert": "model.tflite",
    "litert_quantized": "model_quantized.tflite",
}
LABELS = "labels.txt"  # beside a .tflite: one class name per line, as LiteRT reads


def input_signature(size):
    """The one input of the exported graph: raw RGB pixels, any batch size."""
    return [keras.InputSpec(shape=(None, size, size, 3), dtype="float32", name="image")]


def export_model(model, fmt, output_dir, classes):
    """Write the model in this format into output_dir; return its path.

    The class table goes with it: in the ONNX file's metadata, as `classes.json`
    inside the SavedModel folder, or as `labels.txt` beside a `.tflite` file.
    """
    if fmt not in FORMATS:
        raise UserError(
            f"unknown export format {fmt!r}; use --export with one of "
            + ", ".join(FORMATS)
        )
    options = converter_options(fmt)
    # The folder's manifest lists its exports: an earlier one of ours is replaced,
    # anything else of that name is the user's and stops the export.
    names = [FORMATS[fmt]] + ([LABELS] if fmt.startswith("litert") else [])
    runs.claim(output_dir, names, "--export")
    path = Path(output_dir) / FORMATS[fmt]
    tmp = runs.temp_name(path, reserve="folder" if fmt == "saved_model" else True)
    try:
        model.export(
            str(tmp),  # .tmp-<pid>-<name>: the name's extension is kept
            format={"onnx": "onnx", "saved_model": "tf_saved_model"}.get(fmt, "litert"),
            input_signature=input_signature(model.input_shape[1]),
            verbose=False,
            **options,
        )
        add_classes(tmp, fmt, classes)
        if tmp.is_dir():  # a SavedModel: os.replace cannot replace a folder
            runs.remove(path)  # an earlier one of ours, as claimed above
        os.replace(tmp, path)  # never a half-written export
    except OSError as error:
        raise UserError(
            f"cannot write {path} ({error.strerror}); check --output-dir"
        ) from None
    finally:
        runs.remove(tmp)
    size = model.input_shape[1]
    print(f"Exported {path} ({size_mb(path):.1f} MB): {size}x{size} RGB in, logits out")
    return path


def converter_options(fmt):
    """The exporter's settings for this format; an error off TensorFlow.

    Every format is exported through TensorFlow, which requirements.txt installs
    (on JAX, ONNX needs jax2onnx; on PyTorch, SavedModel fails), and a .keras file
    is the same model on every backend.
    """
    if keras.backend.backend() != "tensorflow":
        raise UserError(
            f"--export {fmt} runs on TensorFlow's exporters, but Keras runs on "
            f"{keras.backend.backend()}; run it with KERAS_BACKEND=tensorflow (the "
            ".keras file is the same on every backend)"
        )
    if not fmt.startswith("litert"):
        return {}
    from tensorflow import lite

    quantized = fmt == "litert_quantized"
    return {"optimizations": [lite.Optimize.DEFAULT]} if quantized else {}


def add_classes(path, fmt, classes):
    """Store the class table with an export: metadata, or a file beside it."""
    if fmt == "saved_model":
        (Path(path) / "classes.json").write_text(classes.to_json() + "\n")
        return
    if fmt.startswith("litert"):
        labels = Path(path).parent / LABELS
        with runs.atomic_path(labels) as tmp:
            Path(tmp).write_text("".join(name + "\n" for name in classes.names))
        return
    import onnx

    graph = onnx.load(str(path))
    for key, value in onnx_metadata(classes).items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))


def size_mb(path):
    """The size of a file, or of all files in a folder, in megabytes."""
    path = Path(path)
    paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in paths) / 1e6
