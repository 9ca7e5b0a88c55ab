"""--export onnx_parser and litert_parser: one file from a photo to its class ids."""

import json
import re
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
from PIL import Image

from conftest import ROOT, fails_with, run_python, run_tutorial
from data import make_toy_people


@pytest.fixture(scope="module", params=["none", "flip"])
def parsers(request, tiny_run, tmp_path_factory):
    """The folder of both parsers of the tiny model, and their --tta."""
    folder = tmp_path_factory.mktemp("parsers")
    for fmt in ["onnx_parser", "litert_parser"]:
        model = tiny_run / "model.keras"
        argv = ["--export", fmt, "--model", model, "--tta", request.param]
        run_tutorial(*argv, "--output-dir", folder)
    return folder, request.param


def person(path, height, width):
    """A synthetic photo of people at this size."""
    image, _ = make_toy_people.render_sample(5, 0, 160, 160)
    Image.fromarray(image).resize((width, height), Image.BILINEAR).save(path)
    return path


def parse(folder, rgb):
    """The class ids that each parser gives for one RGB photo, by runtime."""
    from ai_edge_litert.interpreter import Interpreter

    session = onnxruntime.InferenceSession(str(folder / "parser.onnx"))
    runner = Interpreter(model_path=str(folder / "parser.tflite"))
    lite = runner.get_signature_runner()(photo=rgb[None])
    return {
        "onnx": session.run(None, {"photo": rgb[None]})[0][0],
        "litert": next(iter(lite.values()))[0],
    }


@pytest.mark.slow
@pytest.mark.parametrize("height, width", [(97, 203), (640, 480), (1024, 768)])
def test_a_parser_gives_the_ids_that_predict_writes(
    parsers, tiny_run, tmp_path, height, width
):
    folder, tta = parsers
    photo = person(tmp_path / "photo.png", height, width)
    argv = ["--predict", photo, "--model", tiny_run / "model.keras", "--tta", tta]
    run_tutorial(*argv, "--output-dir", tmp_path)
    expected = np.asarray(Image.open(tmp_path / "photo_ids.png"))
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    for runtime, ids in parse(folder, rgb).items():
        assert ids.shape == (height, width) and ids.dtype == np.uint8, runtime
        assert (ids == expected).mean() >= 0.999, runtime


@pytest.mark.slow
def test_the_parsers_carry_the_class_table(parsers):
    folder, _ = parsers
    metadata = {
        p.key: p.value for p in onnx.load(folder / "parser.onnx").metadata_props
    }
    assert json.loads(metadata["class_names"])[13] == "Face"
    assert (folder / "labels.txt").read_text().splitlines()[13] == "Face"


def test_tta_scales_are_refused_for_an_export(capsys, tiny_run):
    argv = ["--export", "onnx_parser", "--model", tiny_run / "model.keras"]
    fails_with(capsys, [*argv, "--tta-scales", "1,1.25"], "drop it")


@pytest.mark.slow
def test_the_readme_s_parser_example_runs_with_onnxruntime_alone(parsers, tmp_path):
    shutil.copytree(parsers[0], tmp_path / "exported")
    Image.new("RGB", (90, 70), (200, 120, 90)).save(tmp_path / "photo.jpg")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(block for block in blocks if "parser.onnx" in block)
    run_python("-c", example, cwd=tmp_path, PYTHONPATH=None)  # a fresh Python
    assert Image.open(tmp_path / "photo_ids.png").size == (90, 70)
