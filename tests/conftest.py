"""Shared fixtures: a tiny synthetic CIHP folder and one tiny end-to-end run."""

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from data import toy_people  # noqa: E402

TINY = "--image-size 64 --batch-size 4 --epochs 1 --num-train-images 8".split()
TINY += "--num-val-images 4 --weights none".split()


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """Sixteen small synthetic images in the CIHP layout, made once per session."""
    root = tmp_path_factory.mktemp("toy") / "cihp"
    return toy_people.generate(root, num_images=16, min_size=64, max_size=112)


@pytest.fixture
def cihp_copy(toy_root, tmp_path):
    """A private copy of the tiny data set that a test may break."""
    return shutil.copytree(toy_root, tmp_path / "cihp")


@pytest.fixture(scope="session")
def tiny_run(toy_root, tmp_path_factory):
    """Train once, in-process, over a stale earlier run; return the output folder."""
    import deeplabv3_plus

    output_dir = tmp_path_factory.mktemp("run") / "outputs"
    (output_dir / "checkpoints").mkdir(parents=True)
    (output_dir / "checkpoints" / "epoch-007.keras").write_text("stale")
    (output_dir / "model.keras").write_text("stale")
    argv = ["--data-dir", str(toy_root), "--output-dir", str(output_dir), *TINY]
    argv.append("--overwrite")  # tests/test_robustness.py checks what it replaced
    deeplabv3_plus.main(deeplabv3_plus.parse_args(argv))
    return output_dir
