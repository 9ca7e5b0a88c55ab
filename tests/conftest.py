"""Shared fixtures: a tiny synthetic CIHP folder and one tiny end-to-end run."""

import argparse
import atexit
import os
import runpy
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests' run locks go in a cache of their own, deleted after the session.
CACHE = tempfile.mkdtemp(prefix="deeplabv3_plus-test-cache-")
os.environ["XDG_CACHE_HOME"] = CACHE
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)

from data import make_toy_people  # noqa: E402
from deeplab_support import UserError, cli, datasets  # noqa: E402
from deeplab_support.notebook import TUTORIAL  # noqa: E402

TINY = "--image-size 64 --batch-size 4 --epochs 1 --num-train-images 8".split()
TINY += "--num-val-images 4 --weights none".split()


def run_tutorial(*argv):
    """Run deeplabv3_plus.py in this process with these flags, as the script does.

    An error ends it as the script's excepthook would: the one line that
    `cli.explain` prints, and SystemExit with its exit code.
    """
    saved, argv = sys.argv, [str(a) for a in argv]
    sys.argv = [str(TUTORIAL), *argv]
    try:
        return runpy.run_path(str(TUTORIAL), run_name="__main__")
    except (UserError, KeyboardInterrupt, RuntimeError, OSError) as error:
        import deeplabv3_plus

        code = cli.explain(error, cli.parse_args(deeplabv3_plus.DEFAULTS, argv))
        if code is None:
            raise
        raise SystemExit(code) from None
    finally:
        sys.argv = saved


def fails_with(capsys, argv, *phrases):
    """Run the tutorial; check it exits 2 with one error line naming the phrases."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_tutorial(*argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, err
    return err


def split(root, num_train, num_val=0, val_split="train-tail"):
    """The (image, mask) pairs that a run takes from the data set in root."""
    args = argparse.Namespace(
        val_split=val_split, num_train_images=num_train, num_val_images=num_val
    )
    return datasets.split(datasets.find(root), args)


def schedule_of(optimizer):
    """The learning-rate schedule of an optimizer, through its public config."""
    import keras

    return keras.optimizers.schedules.deserialize(
        optimizer.get_config()["learning_rate"]
    )


def run_args(data_dir, output_dir, *extra):
    """Command-line arguments for a tiny run."""
    return ["--data-dir", str(data_dir), "--output-dir", str(output_dir), *TINY, *extra]


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """Sixteen small synthetic images in the CIHP layout, made once per session."""
    root = tmp_path_factory.mktemp("toy") / "cihp"
    return make_toy_people.generate(root, num_images=16, min_size=64, max_size=112)


@pytest.fixture
def cihp_copy(toy_root, tmp_path):
    """A private copy of the tiny data set that a test may break."""
    return shutil.copytree(toy_root, tmp_path / "cihp")


@pytest.fixture(scope="session")
def tiny_run(toy_root, tmp_path_factory):
    """Train once, in-process, beside a file of the user's; return the output folder."""
    output_dir = tmp_path_factory.mktemp("run") / "outputs"
    output_dir.mkdir()
    (output_dir / "my_notes.txt").write_text("the user's")  # a run leaves it alone
    run_tutorial(*run_args(toy_root, output_dir))
    return output_dir
