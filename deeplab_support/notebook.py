"""`python -m deeplab_support.notebook` writes the tutorial as a notebook, as
keras.io does: each top-level triple-quoted block becomes a markdown cell (the
header's fields the first), a `\"\"\"shell` block a cell of `!` commands, and the
code between them a code cell. The notebook records a fingerprint of its cells, so
only a notebook made here and never edited is ever replaced.
"""

import hashlib
import json
import os
import re
import sys
from pathlib import Path

from deeplab_support import UserError, cli, files, runs

TUTORIAL = Path(__file__).resolve().parent.parent / "deeplabv3_plus.py"
BLOCK = re.compile(r'^"""(shell)?\n(.*?)^"""\n', re.DOTALL | re.MULTILINE)


def split_cells(source):
    """Split tutorial source into (kind, text) cells: markdown, code or shell."""
    parts = BLOCK.split(source)  # code, then per block: "shell" or None, text, code
    cells = [("code", parts[0])]
    for i in range(1, len(parts), 3):
        shell, text, code = parts[i : i + 3]
        cells += [("shell" if shell else "markdown", text), ("code", code)]
    return [(kind, text.strip("\n")) for kind, text in cells if text.strip()]


def header_markdown(text):
    """The header fields as markdown: a title, then one line per field."""
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    lines = [f"# {fields.pop('Title', 'DeepLabV3+')}", ""]
    lines += [f"**{name}:** {value}<br>" for name, value in fields.items()]
    return "\n".join(lines)


def to_notebook(source):
    """Build the notebook (as a dict in nbformat 4) from tutorial source."""
    cells = []
    for index, (kind, text) in enumerate(split_cells(source)):
        if kind == "shell":
            text = "\n".join(f"!{line}" for line in text.splitlines())
        cell = {"cell_type": "markdown", "id": f"cell-{index}", "metadata": {}}
        cell["source"] = text
        if kind != "markdown":
            cell.update(cell_type="code", execution_count=None, outputs=[])
        elif index == 0:
            cell["source"] = header_markdown(text)
        cells.append(cell)
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    metadata = {"kernelspec": kernel, "language_info": {"name": "python"}}
    metadata["deeplabv3_plus"] = {"cells_sha256": fingerprint(cells)}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def fingerprint(cells):
    """A hash of the cells' kinds and texts (not their outputs)."""
    texts = [[c["cell_type"], "".join(c["source"])] for c in cells]
    return hashlib.sha256(json.dumps(texts).encode()).hexdigest()


def is_unedited(path):
    """Whether path is a notebook written here whose cells are as they were."""
    try:
        notebook = json.loads(files.read_text(path, "notebook"))
        made = notebook["metadata"]["deeplabv3_plus"]["cells_sha256"]
        return made == fingerprint(notebook["cells"])
    except (UserError, ValueError, KeyError, TypeError):
        return False


def write_notebook(source_path=TUTORIAL, target_path=None):
    """Write the notebook next to the tutorial (atomically); return its path."""
    source_path = Path(source_path)
    target_path = Path(target_path or source_path.with_suffix(".ipynb"))
    notebook = to_notebook(files.read_text(source_path, "--source"))
    if os.path.lexists(target_path) and not is_unedited(target_path):
        raise UserError(
            f"{target_path} exists and is not an unedited notebook made from "
            f"{source_path.name}, so it is kept; move it away or pass --output"
        )
    try:  # written beside the target, then renamed over it: never half a notebook
        with runs.atomic_path(target_path, claimed=False) as tmp:
            tmp.write_text(json.dumps(notebook, indent=1) + "\n", encoding="utf-8")
    except OSError as error:
        raise UserError(
            f"cannot write {target_path} ({error.strerror}); pass --output in a "
            "writable folder"
        ) from None
    return target_path


if __name__ == "__main__":
    parser = cli.Parser(
        prog="python -m deeplab_support.notebook",
        description="Write the tutorial as a notebook.",
    )
    parser.add_argument("--source", default=TUTORIAL, help="the tutorial .py file")
    parser.add_argument("--output", help="the .ipynb to write (beside the source)")
    options = parser.parse_args()
    try:
        print(f"Wrote {write_notebook(options.source, options.output)}")
    except UserError as error:
        sys.exit(cli.explain(error))
