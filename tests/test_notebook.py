"""The tutorial as keras.io publishes it: a notebook that runs cell by cell."""

import base64
import os
import stat
import sys

import black
import nbformat
import pytest
from nbclient import NotebookClient

import deeplabv3_plus as dl
from conftest import ROOT
from deeplab_support import UserError, cli, notebook
from deeplab_support.notebook import TUTORIAL


def test_the_header_follows_the_tutobook_rules():
    lines = TUTORIAL.read_text().splitlines()
    fields = [line.split(":")[0] for line in lines[1:6]]
    assert lines[0] == '"""'
    assert fields == ["Title", "Author", "Date created", "Last modified", "Description"]
    description = lines[5].split(": ", 1)[1]
    assert description[0].isupper() and description.endswith(".")
    assert len(description) < 100


@pytest.mark.parametrize("where", ["source_path", "target_path"])
def test_a_source_it_cannot_read_or_a_target_it_cannot_write_is_named(tmp_path, where):
    missing = tmp_path / "no-folder" / "tutorial.py"
    with pytest.raises(UserError, match=f"cannot (read|write).* {missing}"):
        notebook.write_notebook(**{where: missing})


def test_the_notebook_gets_the_permissions_of_any_new_file(tmp_path):
    target = notebook.write_notebook(target_path=tmp_path / "tutorial.ipynb")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask  # as open() makes


def test_the_file_is_black_clean_with_no_trailing_spaces_or_one_line_blocks():
    source = TUTORIAL.read_text()
    lines = source.splitlines()
    assert "fmt: skip" not in source
    assert not [line for line in lines if line != line.rstrip()]
    assert not [x for x in lines if len(x) > 3 and x[:3] == x[-3:] == '"""']
    assert black.format_str(source, mode=black.Mode(line_length=88)) == source


@pytest.mark.filterwarnings("error")  # nbformat warns of what will be errors
def test_the_notebook_is_valid_nbformat():
    nbformat.validate(notebook.to_notebook(TUTORIAL.read_text()), version=4)


def test_a_shell_block_becomes_a_cell_of_commands():
    source = 'x = 1\n\n"""shell\npip install gdown\nls data\n"""\n\ny = 2\n'
    cells = notebook.to_notebook(source)["cells"]
    expected = ["x = 1", "!pip install gdown\n!ls data", "y = 2"]
    assert [c["source"] for c in cells] == expected


def test_prose_and_code_blocks_become_cells():
    cells = notebook.to_notebook(TUTORIAL.read_text())["cells"]
    kinds = [cell["cell_type"] for cell in cells]
    assert kinds[0] == "markdown" and cells[0]["source"].startswith("# Multiclass")
    assert "code" in kinds and kinds.count("markdown") >= 10
    assert not [c for c in cells if "!gdown" in c["source"]]  # shown, never run
    markdown = [c["source"] for c in cells if c["cell_type"] == "markdown"]
    headings = [source.split("\n")[0] for source in markdown]
    order = ["## Downloading", "## Creating", "## Building", "## Training"]
    order += ["## Inference", "### Inference on Train", "### Inference on Validation"]
    order += ["## Evaluating", "## Using"]
    found = [next(i for i, h in enumerate(headings) if h.startswith(o)) for o in order]
    assert found == sorted(found)


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
    resources = {"metadata": {"path": str(ROOT)}}
    NotebookClient(nb, timeout=600, resources=resources).execute()
    text, figures, section = {}, {}, None  # what each section's cells showed
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("#"):
            section = cell.source.split("\n")[0]  # prose without a heading continues
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text[section] = text.get(section, "") + output.get("text", "")
            text[section] += data.get("text/plain", "")
            if "image/png" in data:
                assert base64.b64decode(data["image/png"])[:4] == b"\x89PNG"
                figures[section] = figures.get(section, 0) + 1
    assert "Total params" in text["## Building the DeepLabV3+ model"]
    (training,) = [k for k in text if k and k.startswith("## Training")]
    assert "val_mean_iou: " in text[training]  # the log
    assert figures.get(training, 0) >= 1  # and the curves
    assert sum(figures.values()) >= 3
    assert any(k.startswith("### Inference on Train") for k in figures)
    assert any(k.startswith("### Inference on Validation") for k in figures)
    assert (tmp_path / "out" / "predictions_val.png").is_file()
