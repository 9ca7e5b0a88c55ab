"""Export a trained model for use without Keras: ONNX, SavedModel or LiteRT.

Keras's `model.export` writes a float32 graph from raw 0..255 RGB pixels (`image`,
shape (batch, size, size, 3)) to the logits of every class per pixel; a parser
format wraps the whole prediction. `litert_quantized` stores the weights in 8 bits
(dynamic-range quantisation); the activations stay float32.
"""

import json
import warnings
from pathlib import Path

import keras

from deeplab_support import UserError, runs

FORMATS = {  # --export format: the file it writes
    "onnx": "model.onnx",
    "saved_model": "saved_model",
    "litert": "model.tflite",
    "litert_quantized": "model_quantized.tflite",
    "onnx_parser": "parser.onnx",  # any-size uint8 photo in, class ids out
    "litert_parser": "parser.tflite",
}
# Keras's ONNX exporter asks NumPy for np.object, which NumPy warns about.
warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)


class Parser(keras.layers.Layer):
    """uint8 RGB of any size in, its uint8 class ids out, as --predict: the photo
    resized (`keep_aspect`: fitted and padded), the model run (with flip TTA, on the
    mirror too), the logits resized back and their argmax taken (of each target's
    summed probabilities, with a --class-map `matrix`)."""

    def __init__(self, model, flip_classes=None, matrix=None, keep_aspect=False):
        super().__init__()
        self.model, self.flip_classes, self.matrix = model, flip_classes, matrix
        self.keep_aspect = keep_aspect

    def call(self, photo):
        from tensorflow import argmax, cast, exp, gather, image, math, shape

        size = self.model.input_shape[1]
        photo, fitted = cast(photo, "float32"), [size, size]
        if self.keep_aspect:  # as the tutorial's fitted_shape: no side under 1 px
            sides = cast(shape(photo)[1:3], "float32")
            scaled = math.round(size / math.reduce_max(sides) * sides)
            fitted = cast(math.maximum(scaled, 1), "int32")
        small = image.resize(photo, fitted)  # bilinear
        small = image.pad_to_bounding_box(small, 0, 0, size, size)  # black, as fit()
        logits = self.model(small)
        if self.flip_classes is not None:  # the mirror's left arm is a right arm
            mirrored = self.model(small[:, :, ::-1])[:, :, ::-1]
            logits = (logits + gather(mirrored, self.flip_classes, axis=-1)) / 2
        logits = logits[:, : fitted[0], : fitted[1]]  # the padding's cropped off
        logits = image.resize(logits, shape(photo)[1:3])  # bilinear, photo's size
        if self.matrix is not None:  # as metrics.upsample_argmax
            logits = exp(logits - math.reduce_max(logits, -1, True)) @ self.matrix
        return cast(argmax(logits, axis=-1), "uint8")


def parser_graph(model, flip_classes=None, matrix=None, keep_aspect=False):
    """The model inside a Parser, and its input: one photo of any size."""
    photo = keras.Input((None, None, 3), dtype="uint8", name="photo")
    graph = keras.Model(photo, Parser(model, flip_classes, matrix, keep_aspect)(photo))
    spec = keras.InputSpec(shape=(1, None, None, 3), dtype="uint8", name="photo")
    return graph, [spec]


def export_model(model, fmt, output_dir, classes, flip_classes=None, matrix=None):
    """Write the model in this format into output_dir, with its class table; return
    its path. A parser format holds the whole prediction: flip TTA with
    `flip_classes`, and a --class-map's `matrix` (then `classes` are its targets),
    and fits photos as the model was trained (`classes.keep_aspect`)."""
    if keras.backend.backend() != "tensorflow":  # a .keras file loads on any backend
        raise UserError(
            f"--export {fmt} runs on TensorFlow's exporters, but Keras runs on "
            f"{keras.backend.backend()}; run it with KERAS_BACKEND=tensorflow (the "
            ".keras file is the same on every backend)"
        )
    # The folder's manifest lists its exports: an earlier one of ours is replaced,
    # anything else of that name is the user's and stops the export.
    names = [FORMATS[fmt]] + ([labels_file(fmt)] if fmt.startswith("litert") else [])
    runs.claim(output_dir, names, "--export")
    path, size = Path(output_dir) / FORMATS[fmt], model.input_shape[1]
    graph, inputs = model, f"{size}x{size} RGB in, logits out"
    spec = [keras.InputSpec(shape=(None, size, size, 3), dtype="float32", name="image")]
    if fmt.endswith("_parser"):
        graph, spec = parser_graph(model, flip_classes, matrix, classes.keep_aspect)
        inputs = "uint8 RGB of any size in, class ids at that size out"
    options = {}
    if fmt == "litert_quantized":
        from tensorflow import lite

        options["optimizations"] = [lite.Optimize.DEFAULT]
    kind = {"saved_model": "tf_saved_model"}.get(fmt, fmt.split("_")[0])
    try:  # written to .tmp-<pid>-<name> (its extension kept), then renamed
        with runs.atomic_path(path, folder=fmt == "saved_model") as tmp:
            graph.export(str(tmp), kind, input_signature=spec, verbose=False, **options)
            add_classes(tmp, fmt, classes)
    except OSError as error:
        raise UserError(
            f"cannot write {path} ({error.strerror}); check --output-dir"
        ) from None
    print(f"Exported {path} ({size_mb(path):.1f} MB): {inputs}")
    return path


def labels_file(fmt):
    """The class names beside a .tflite file, one a line: model_labels.txt beside
    model.tflite, so that a parser of other classes in the folder keeps its own."""
    return FORMATS[fmt].removesuffix(".tflite") + "_labels.txt"


def add_classes(path, fmt, classes):
    """Store the class table with an export: `classes.json` in a SavedModel, the
    ONNX metadata, or the names in a labels file beside a `.tflite` file."""
    if fmt == "saved_model":
        (Path(path) / "classes.json").write_text(classes.to_json() + "\n")
    elif fmt.startswith("litert"):
        with runs.atomic_path(Path(path).parent / labels_file(fmt)) as tmp:
            Path(tmp).write_text("".join(name + "\n" for name in classes.names))
    else:
        import onnx

        graph = onnx.load(str(path))
        metadata = {
            "class_names": json.dumps(list(classes.names)),
            "class_colors": json.dumps([list(c) for c in classes.colors]),
            "void_label": str(classes.void),
            "keep_aspect": str(classes.keep_aspect).lower(),  # pad to the square?
        }
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(path))


def size_mb(path):
    """The size of a file, or of all files in a folder, in megabytes."""
    paths = [Path(path), *Path(path).rglob("*")]  # a file has nothing below it
    return sum(p.stat().st_size for p in paths if p.is_file()) / 1e6
