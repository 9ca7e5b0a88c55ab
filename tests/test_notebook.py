"""The tutorial as keras.io publishes it: a notebook that runs cell by cell."""

import base64
import sys

import nbformat
import pytest
from nbclient import NotebookClient

import deeplabv3_plus as dl
from conftest import ROOT, run_python
from deeplab_support import cli, notebook

TUTORIAL = ROOT / "deeplabv3_plus.py"


def test_the_header_follows_the_tutobook_rules():
    lines = TUTORIAL.read_text().splitlines()
    fields = [line.split(":")[0] for line in lines[1:6]]
    assert lines[0] == '"""'
    assert fields == ["Title", "Author", "Date created", "Last modified", "Description"]
    description = lines[5].split(": ", 1)[1]
    assert description[0].isupper() and description.endswith(".")
    assert len(description) < 100


def test_the_file_is_black_clean_with_no_trailing_spaces_or_one_line_blocks():
    source = TUTORIAL.read_text()
    assert "fmt: skip" not in source
    assert not [line for line in source.splitlines() if line != line.rstrip()]
    one_liners = [
        line
        for line in source.splitlines()
        if line.startswith('"""') and line.endswith('"""') and len(line) > 3
    ]
    assert not one_liners
    run_python("-m", "black", "--check", "--quiet", TUTORIAL)


def test_prose_code_and_shell_blocks_become_cells():
    cells = notebook.to_notebook(TUTORIAL.read_text())["cells"]
    kinds = [cell["cell_type"] for cell in cells]
    assert kinds[0] == "markdown" and cells[0]["source"].startswith("# Multiclass")
    assert "code" in kinds and kinds.count("markdown") >= 10
    shell = [c["source"] for c in cells if c["source"].startswith("!gdown")]
    assert len(shell) == 1
    headings = [
        c["source"].split("\n")[0] for c in cells if c["cell_type"] == "markdown"
    ]
    order = ["## Downloading", "## Creating", "## Building", "## Training"]
    order += ["## Inference", "### Inference on Train", "### Inference on Validation"]
    order += ["## Evaluating", "## Using"]
    found = [next(i for i, h in enumerate(headings) if h.startswith(o)) for o in order]
    assert found == sorted(found)


def outputs_of(cell):
    """The text and the number of PNG images a code cell printed or showed."""
    text, images = "", 0
    for output in cell.get("outputs", []):
        text += output.get("text", "")
        data = output.get("data", {})
        text += data.get("text/plain", "")
        if "image/png" in data:
            assert base64.b64decode(data["image/png"])[:4] == b"\x89PNG"
            images += 1
    return text, images


def test_in_a_kernel_its_own_arguments_are_ignored(monkeypatch):
    monkeypatch.setattr(cli, "in_notebook", lambda: True)
    kernel = ["/usr/lib/python3/ipykernel_launcher.py", "-f", "/run/kernel-1.json"]
    monkeypatch.setattr(sys, "argv", kernel)
    args = cli.parse_args(dl.DEFAULTS)
    assert (args.image_size, args.epochs, args.given) == (512, 25, set())


def test_in_a_kernel_a_misspelt_flag_set_by_a_cell_is_an_error(monkeypatch, capsys):
    monkeypatch.setattr(cli, "in_notebook", lambda: True)
    monkeypatch.setattr(sys, "argv", ["deeplabv3_plus.py", "--quik"])
    with pytest.raises(SystemExit):
        cli.parse_args(dl.DEFAULTS)
    assert "unrecognized arguments: --quik" in capsys.readouterr().err


@pytest.mark.slow
def test_the_notebook_runs_and_shows_each_result_under_its_section(tmp_path):
    nb = nbformat.from_dict(notebook.to_notebook(TUTORIAL.read_text()))
    flags = ["deeplabv3_plus.py", "--quick", "--epochs", "1", "--image-size", "64"]
    flags += ["--output-dir", str(tmp_path / "out")]
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import sys\nsys.argv = {flags!r}"))
    NotebookClient(
        nb, timeout=600, resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    shown = {}
    section = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if cell.source.startswith("#"):  # prose without a heading continues
                section = cell.source.split("\n")[0]
            continue
        text, images = outputs_of(cell)
        shown.setdefault(section, ["", 0])
        shown[section][0] += text
        shown[section][1] += images
    assert "Total params" in shown["## Building the DeepLabV3+ model"][0]
    training = next(v for k, v in shown.items() if k and k.startswith("## Training"))
    assert "epoch 1/1" in training[0] and training[1] >= 1  # log and curves
    with_figures = [k for k, v in shown.items() if v[1]]
    assert sum(v[1] for v in shown.values()) >= 3 and len(with_figures) >= 2
    assert any(k.startswith("### Inference on Train") for k in with_figures)
    assert any(k.startswith("### Inference on Validation") for k in with_figures)
    assert (tmp_path / "out" / "predictions_val.png").is_file()
