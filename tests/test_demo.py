"""demo.py: the prediction behind the page, and the page served on loopback."""

import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import demo
from conftest import ROOT, png_header, run_python, run_tutorial, subprocess_env
from deeplab_support import UserError
from deeplab_support.classes import ClassTable


@pytest.fixture(scope="module")
def segmenter(tiny_run):
    """The demo's prediction function with the tiny trained model loaded."""
    return demo.Segmenter(tiny_run / "model.keras")


@pytest.mark.slow
def test_a_photo_gives_overlay_mask_legend_and_time(segmenter, example_photo):
    overlay, mask, legend, message, _ = segmenter(example_photo)
    height, width = np.asarray(Image.open(example_photo)).shape[:2]
    assert overlay.shape == mask.shape == (height, width, 3)
    assert "%" in legend and " ms " in message


def wait_for_page(process, url, seconds=180):
    """Wait until the demo answers on url; fail if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the demo did not answer on {url} within {seconds} s")


def bad_upload(folder, name):
    """Write a file a careless or hostile user might upload; return its path."""
    path = folder / "uploads" / name
    path.parent.mkdir(exist_ok=True)
    if name == "bomb.png":
        png_header(path, 30_000, 30_000)  # 900 megapixels in a few bytes
    elif name == "huge.png":
        png_header(path, 6000, 5000)  # under Pillow's limit, over the demo's
    elif name == "cut.png":
        Image.effect_noise((64, 64), 50).save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif name == "photo.gif":
        Image.new("RGB", (8, 8)).save(path)
    elif name == "folder.png":
        path.mkdir()
    else:
        path.write_text("" if name == "empty.png" else "not an image")
    return str(path)


BAD_UPLOADS = {
    "bomb.png": "more than 25 megapixels by its header",
    "huge.png": "more than 25 megapixels (6000x5000",
    "notes.txt": "not an image that can be read",
    "empty.png": "empty (0 bytes)",
    "cut.png": "cannot decode",
    "photo.gif": "a GIF file",
    "folder.png": "not a regular file",
}


@pytest.mark.parametrize("name", BAD_UPLOADS)
def test_a_bad_upload_is_refused_naming_the_file_not_its_folder(tmp_path, name):
    with pytest.raises(UserError, match=re.escape(BAD_UPLOADS[name])) as error:
        demo.read_upload(bad_upload(tmp_path, name))
    assert f"image {name} " in str(error.value) and "/" not in str(error.value)


@pytest.mark.slow
def test_the_served_page_predicts_what_predict_writes(
    tiny_run, example_photo, tmp_path, monkeypatch
):
    from gradio_client import Client, handle_file

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the client's downloads

    model, port = tiny_run / "model.keras", demo.free_port()
    command = [sys.executable, "demo.py", "--model", str(model), "--port", str(port)]
    temp = tmp_path / "temp"  # the demo's temporary folders go here, then go
    temp.mkdir()
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    env = subprocess_env(TMPDIR=str(temp))
    process = subprocess.Popen(command, cwd=ROOT, env=env, **pipes)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_page(process, url)
        client = Client(url, verbose=False, download_files=str(tmp_path))
        photo = handle_file(example_photo)
        _, mask, legend, _, face = client.predict(photo, ["Face"], api_name="/segment")
        bomb = handle_file(bad_upload(tmp_path, "bomb.png"))
        overlay, _, _, message, _ = client.predict(bomb, [], api_name="/segment")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not list(temp.iterdir())  # uploads and examples are deleted at exit
    assert overlay is None and message.startswith("**Cannot segment"), message
    assert "bomb.png" in message and "/" not in message.split("**")[-1], message
    argv = ["--predict", example_photo, "--model", model, "--output-dir", tmp_path]
    run_tutorial(*argv, "--mask-classes", "Face")
    written = np.asarray(Image.open(tmp_path / "person_3_mask.png").convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(mask).convert("RGB")), written)
    written = np.asarray(Image.open(tmp_path / "person_3_class-Face.png"))
    assert np.array_equal(np.asarray(Image.open(face)), written)
    assert "%" in legend


@pytest.mark.slow
def test_a_missing_model_is_one_error_line_and_exit_code_2_before_serving(tmp_path):
    argv = ROOT / "demo.py", "--model", "none.keras"
    result = run_python(*argv, exit_code=2, cwd=tmp_path)
    assert result.stderr.startswith("error: model file none.keras does not exist")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("port", ["-1", "99999", "http"])
def test_a_port_that_cannot_be_is_one_error_line(capsys, port):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args(["--port", port])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: argument --port:") and "1 to 65535" in err


def test_a_port_in_use_is_one_error_before_serving():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot serve on port {port}"):
            demo.free_port(port)


def test_the_legend_shows_html_in_a_class_name_as_text():
    classes = ClassTable(["back", "<i>person"], [(0, 0, 0), (9, 9, 9)])
    page = SimpleNamespace(classes=classes, colormap=classes.palette())
    legend = demo.Segmenter.legend(page, np.ones((2, 2), np.uint8))
    assert "&lt;i&gt;person: 100.0%" in legend
