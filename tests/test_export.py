"""--export: ONNX, SavedModel and LiteRT files that match the Keras model, and the
parsers (onnx_parser, litert_parser): one file from a photo to its class ids."""

import json
import re
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
from PIL import Image

from conftest import fails_with, person, ROOT, run_python, run_tutorial
from deeplab_support import cli
from deeplab_support.classes import CIHP


@pytest.fixture(scope="module")
def photos(toy_root):
    """Four synthetic photos at the tiny model's 64 px input size, as float32."""
    paths = sorted((toy_root / "Training" / "Images").glob("*.jpg"))[:4]
    resized = [np.asarray(Image.open(p).convert("RGB").resize((64, 64))) for p in paths]
    return np.stack(resized).astype(np.float32)


@pytest.fixture(scope="module")
def keras_logits(tiny_run, photos):
    """What the trained Keras model predicts for the photos."""
    model, _ = cli.load_model(tiny_run / "model.keras", "--model")
    return np.asarray(model.predict_on_batch(photos), dtype=np.float32)


def export_to(output_dir, tiny_run, fmt, *flags):
    """Export the tiny trained model in this format to output_dir."""
    model = tiny_run / "model.keras"
    run_tutorial("--export", fmt, "--model", model, "--output-dir", output_dir, *flags)


def agree(logits, reference):
    """Check logits within 1e-3 and at least 99.9% of pixels with the same class."""
    assert np.abs(logits - reference).max() < 1e-3
    same = np.mean(logits.argmax(-1) == reference.argmax(-1))
    assert same >= 0.999, same


@pytest.fixture(scope="module")
def onnx_dir(tiny_run, tmp_path_factory):
    """The tiny trained model exported to ONNX (--image-size is not the model's), by
    the script as a user runs it: no library's warning on its stderr."""
    folder, model = tmp_path_factory.mktemp("onnx"), tiny_run / "model.keras"
    flags = ["--export", "onnx", "--model", model, "--image-size", "512"]
    done = run_python(ROOT / "deeplabv3_plus.py", *flags, "--output-dir", folder)
    assert done.stderr == ""
    return folder


@pytest.fixture(scope="module")
def litert_dir(tiny_run, tmp_path_factory):
    """The tiny trained model exported to LiteRT, plain and quantized, in a folder."""
    folder = tmp_path_factory.mktemp("litert")
    export_to(folder, tiny_run, "litert")
    export_to(folder, tiny_run, "litert_quantized")
    return folder


@pytest.fixture(scope="module", params=["none", "flip"])
def parsers(request, tiny_run, tmp_path_factory):
    """The folder of both parsers of the tiny model, and their --tta."""
    folder = tmp_path_factory.mktemp("parsers")
    for fmt in ["onnx_parser", "litert_parser"]:
        export_to(folder, tiny_run, fmt, "--tta", request.param)
    return folder, request.param


@pytest.mark.slow
def test_onnx_has_one_input_of_the_model_s_size_and_matches_keras(
    onnx_dir, photos, keras_logits
):
    (image,) = onnx.load(onnx_dir / "model.onnx").graph.input
    shape = [d.dim_value for d in image.type.tensor_type.shape.dim]
    assert image.name == "image" and shape[1:] == [64, 64, 3]  # not --image-size
    session = onnxruntime.InferenceSession(str(onnx_dir / "model.onnx"))
    agree(session.run(None, {"image": photos})[0], keras_logits)


@pytest.mark.slow
def test_onnx_metadata_names_the_classes_of_its_outputs(onnx_dir):
    session = onnxruntime.InferenceSession(str(onnx_dir / "model.onnx"))
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["class_names"]) == list(CIHP.names)
    assert json.loads(metadata["class_colors"])[13] == [0, 0, 255]
    assert metadata["void_label"] == "255"
    assert metadata["keep_aspect"] == "false"  # photos are squashed to the square


@pytest.mark.slow
def test_saved_model_matches_keras(tiny_run, photos, keras_logits, tmp_path):
    import tensorflow as tf

    (tmp_path / "my_notes.txt").write_text("mine")
    export_to(tmp_path, tiny_run, "saved_model")
    export_to(tmp_path, tiny_run, "saved_model")  # replaces its own earlier export
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["my_notes.txt", "run.json", "saved_model"]
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))  # keep it alive
    agree(np.asarray(loaded.serve(photos)), keras_logits)
    classes = json.loads((tmp_path / "saved_model" / "classes.json").read_text())
    assert classes["names"] == list(CIHP.names)


def litert_logits(path, photos):
    """Run a .tflite file on the photos with the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner()
    return np.concatenate([runner(image=photo[None])["output_0"] for photo in photos])


@pytest.mark.slow
def test_litert_matches_keras_and_lists_its_classes(litert_dir, photos, keras_logits):
    agree(litert_logits(litert_dir / "model.tflite", photos), keras_logits)
    labels = (litert_dir / "model_labels.txt").read_text().splitlines()
    assert labels == list(CIHP.names)


@pytest.mark.slow
def test_a_litert_parser_of_other_classes_keeps_its_own_labels(litert_dir, tiny_run):
    coarse = ROOT / "class_maps" / "cihp_coarse.txt"
    export_to(litert_dir, tiny_run, "litert_parser", "--class-map", coarse)
    parser_labels = (litert_dir / "parser_labels.txt").read_text().splitlines()
    assert parser_labels[:2] == ["background", "head"] and len(parser_labels) == 7
    labels = (litert_dir / "model_labels.txt").read_text().splitlines()
    assert labels == list(CIHP.names)  # beside model.tflite, as it was


@pytest.mark.slow
def test_quantized_litert_is_a_third_of_the_size_and_mostly_agrees(
    litert_dir, photos, keras_logits
):
    small, large = litert_dir / "model_quantized.tflite", litert_dir / "model.tflite"
    assert small.stat().st_size < large.stat().st_size / 3
    logits = litert_logits(small, photos)
    assert np.mean(logits.argmax(-1) == keras_logits.argmax(-1)) > 0.9


@pytest.mark.slow
def test_export_on_another_backend_is_one_error_line_saying_how(tiny_run, tmp_path):
    command = [ROOT / "deeplabv3_plus.py", "--export", "onnx"]
    command += ["--model", tiny_run / "model.keras", "--output-dir", tmp_path]
    done = run_python(*command, exit_code=2, cwd=tmp_path, KERAS_BACKEND="jax")
    # One line: loading the model on JAX printed no warnings either.
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: --export onnx runs on TensorFlow's exporters")
    assert "KERAS_BACKEND=tensorflow" in done.stderr


def test_an_unknown_format_names_the_formats(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args({}, ["--export", "tflite"])
    error = capsys.readouterr().err
    assert "--export: invalid choice: 'tflite'" in error
    assert "onnx" in error and "saved_model" in error and "litert" in error


def test_a_model_file_that_is_not_a_model_is_named(capsys, tmp_path):
    (tmp_path / "bad.keras").write_text("not a model")
    argv = ["--export", "onnx", "--model", tmp_path / "bad.keras"]
    fails_with(capsys, argv, "cannot load model", "not a .keras file", "--model")


def run_readme_example(marker, exported, tmp_path):
    """Run the README's Python example that contains marker as a user would paste
    it, in a fresh Python, beside a photo and a copy of exported as exported/."""
    shutil.copytree(exported, tmp_path / "exported")
    Image.new("RGB", (90, 70), (200, 120, 90)).save(tmp_path / "photo.jpg")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(block for block in blocks if marker in block)
    return run_python("-c", example, cwd=tmp_path, PYTHONPATH=None).stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "exported, marker",
    [("onnx_dir", "onnxruntime.InferenceSession"), ("litert_dir", "Interpreter(")],
)
def test_the_readme_s_example_runs_the_export(request, tmp_path, exported, marker):
    said = run_readme_example(marker, request.getfixturevalue(exported), tmp_path)
    if exported == "onnx_dir":  # it writes the class ids at the photo's size
        assert Image.open(tmp_path / "photo_ids.png").size == (90, 70)
    else:
        assert "%" in said


@pytest.mark.slow
def test_the_readme_s_parser_example_runs_with_onnxruntime_alone(parsers, tmp_path):
    run_readme_example("parser.onnx", parsers[0], tmp_path)
    assert Image.open(tmp_path / "photo_ids.png").size == (90, 70)


@pytest.mark.slow
@pytest.mark.parametrize("height, width", [(97, 203), (640, 480), (1024, 768)])
def test_a_parser_gives_the_ids_that_predict_writes(
    parsers, tiny_run, tmp_path, height, width
):
    from ai_edge_litert.interpreter import Interpreter

    (folder, tta), photo = parsers, person(tmp_path / "photo.png", height, width)
    argv = ["--predict", photo, "--model", tiny_run / "model.keras", "--tta", tta]
    run_tutorial(*argv, "--output-dir", tmp_path)
    expected = np.asarray(Image.open(tmp_path / "photo_ids.png"))
    rgb = np.asarray(Image.open(photo).convert("RGB"))[None]
    session = onnxruntime.InferenceSession(str(folder / "parser.onnx"))
    lite = Interpreter(model_path=str(folder / "parser.tflite")).get_signature_runner()
    found = {"onnx": session.run(None, {"photo": rgb})[0][0]}
    found["litert"] = next(iter(lite(photo=rgb).values()))[0]
    for runtime, ids in found.items():
        assert ids.shape == (height, width) and ids.dtype == np.uint8, runtime
        assert (ids == expected).mean() >= 0.999, runtime


@pytest.mark.slow
def test_the_parsers_carry_the_class_table(parsers):
    graph = onnx.load(parsers[0] / "parser.onnx")
    metadata = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(metadata["class_names"])[13] == "Face"
    assert (parsers[0] / "parser_labels.txt").read_text().splitlines()[13] == "Face"


@pytest.mark.parametrize("scales", ["1,1.25", "1"])
def test_tta_scales_are_refused_for_an_export(capsys, tiny_run, tmp_path, scales):
    argv = ["--export", "onnx_parser", "--model", tiny_run / "model.keras"]
    argv += ["--output-dir", tmp_path]  # where a regression would write
    fails_with(capsys, [*argv, "--tta-scales", scales], "drop it")
