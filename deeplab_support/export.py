"""Export a trained model for use without Keras: ONNX or a TensorFlow SavedModel.

Both are written with Keras's own `model.export`. The exported graph always
computes in float32, takes one input, a batch of raw 0..255 RGB pixels at the
model's own input size (`image`, shape (batch, size, size, 3)), and returns the
logits of every class per pixel.
"""

from pathlib import Path

import keras
import numpy as np

from deeplab_support import UserError, datasets, files, runs

FORMATS = {"onnx": "model.onnx", "saved_model": "saved_model"}  # format: file name


def float32_copy(model, build):
    """Rebuild the model with `build` in float32 and give it the model's weights."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # export supports float32 graphs only
    try:
        copy = build(model.input_shape[1], model.output_shape[-1])
    finally:
        keras.config.set_dtype_policy(policy)
    try:
        copy.set_weights([np.asarray(w, dtype="float32") for w in model.get_weights()])
    except ValueError as error:
        raise UserError(
            f"the model's weights do not fit a DeepLabV3+ of its size ({error}); "
            "export a model trained by this script"
        ) from None
    return copy


def input_signature(size):
    """The one input of the exported graph: raw RGB pixels, any batch size."""
    return [keras.InputSpec(shape=(None, size, size, 3), dtype="float32", name="image")]


def export_model(model, fmt, output_dir, build, classes):
    """Write the model as model.onnx or saved_model/ in output_dir; return the path.

    The class table goes with it: in the ONNX file's metadata, or as
    `classes.json` inside the SavedModel folder.
    """
    if fmt not in FORMATS:
        raise UserError(
            f"unknown export format {fmt!r}; use --export onnx or --export saved_model"
        )
    # The folder's manifest lists its exports: an earlier one of ours is replaced,
    # anything else of that name is the user's and stops the export.
    path = runs.take_outputs(output_dir, [FORMATS[fmt]], "--export") / FORMATS[fmt]
    copy = float32_copy(model, build)
    tmp = runs.temp_name(path, reserve="folder" if fmt == "saved_model" else True)
    try:
        copy.export(
            str(tmp),
            format="onnx" if fmt == "onnx" else "tf_saved_model",
            input_signature=input_signature(model.input_shape[1]),
            verbose=False,
        )
        add_classes(tmp, fmt, classes)
        files.move_into_place(tmp, path)  # never a half-written export
    except OSError as error:
        raise UserError(
            f"cannot write {path} ({error.strerror}); check --output-dir"
        ) from None
    finally:
        runs.remove(tmp)
    size = model.input_shape[1]
    print(f"Exported {path} ({size_mb(path):.1f} MB): {size}x{size} RGB in, logits out")
    return path


def add_classes(path, fmt, classes):
    """Store the class table in an export: ONNX metadata, or a JSON file beside."""
    if fmt == "saved_model":
        (Path(path) / "classes.json").write_text(classes.to_json() + "\n")
        return
    import onnx

    graph = onnx.load(str(path))
    for key, value in datasets.onnx_metadata(classes).items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))


def size_mb(path):
    """The size of a file, or of all files in a folder, in megabytes."""
    path = Path(path)
    paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in paths) / 1e6
