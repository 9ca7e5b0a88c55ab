"""Shared fixtures and helpers: tiny synthetic data, runs of the tutorial, and one
tiny end-to-end run."""

import argparse
import atexit
import json
import os
import runpy
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests' run locks go in a cache of their own, deleted after the session.
CACHE = tempfile.mkdtemp(prefix="deeplabv3_plus-test-cache-")
os.environ["XDG_CACHE_HOME"] = CACHE
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)

import deeplabv3_plus  # noqa: E402
from data import make_toy_people  # noqa: E402
from deeplab_support import cli, datasets, files, runs  # noqa: E402
from deeplab_support.notebook import TUTORIAL  # noqa: E402

TINY = "--image-size 64 --batch-size 4 --epochs 1 --num-train-images 8".split()
TINY += "--num-val-images 4 --weights none".split()
# The same numbers on every CPU: mixed_bfloat16 only where the CPU has it natively.
TINY += "--precision float32".split()


def run_tutorial(*argv):
    """Run deeplabv3_plus.py in this process with these flags, as the script does.

    An error goes to the excepthook that the script installed, as an uncaught one
    would; its exit ends the test with SystemExit and the exit code.
    """
    import keras

    saved, argv = sys.argv, [str(a) for a in argv]
    sys.argv, policy = [str(TUTORIAL), *argv], keras.config.dtype_policy()
    hook = sys.excepthook
    try:
        return runpy.run_path(str(TUTORIAL), run_name="__main__")
    except (Exception, KeyboardInterrupt) as error:
        if sys.excepthook is hook:  # stopped before the script installed its own
            raise
        try:
            sys.excepthook(type(error), error, error.__traceback__)
        except SystemExit:  # the user's error: clean up as the process's exit would
            runs.release_unwritten()
            files.remove_private_dirs()
            raise
        raise  # the hook showed a traceback: not an error of the user's
    finally:  # the run set its precision and hook for the whole process
        sys.argv, sys.excepthook = saved, hook
        keras.config.set_dtype_policy(policy)


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


def parse(*argv):
    """The checked arguments of a command line, with the tutorial's defaults."""
    return cli.parse_args(deeplabv3_plus.DEFAULTS, [str(a) for a in argv])


def split(root, num_train, num_val=0, val_split="train-tail"):
    """The (image, mask) pairs that a run takes from the data set in root."""
    args = argparse.Namespace(
        val_split=val_split, num_train_images=num_train, num_val_images=num_val
    )
    return datasets.split(datasets.find(root), args)


def nth_file(root, folder, n):
    """The n-th sorted file of a CIHP training folder (Images or Category_ids)."""
    return sorted((root / "Training" / folder).iterdir())[n]


def optimizer_steps(output_dir):
    """The optimizer's step count in the backup that a run in output_dir committed."""
    import h5py

    folder = runs.read_backup(output_dir)["folder"]
    with h5py.File(Path(output_dir) / folder / runs.BACKUP_WEIGHTS, "r") as saved:
        return int(saved["optimizer/vars/0"][()])  # Adam's first: its iterations


def run_args(data_dir, output_dir, *extra):
    """Command-line arguments for a tiny run."""
    return ["--data-dir", str(data_dir), "--output-dir", str(output_dir), *TINY, *extra]


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """Sixteen small synthetic images in the CIHP layout, made once per session."""
    root = tmp_path_factory.mktemp("toy") / "cihp"
    return make_toy_people.generate(root, num_images=16, min_size=64, max_size=112)


@pytest.fixture(scope="session")
def example_photo(tmp_path_factory):
    """The first synthetic photo that the demo offers, person_3.png."""
    import demo

    return Path(demo.write_examples(tmp_path_factory.mktemp("examples"))[0])


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


def run_python(*args, exit_code=0, cwd=ROOT, timeout=900, **env):
    """Run `python *args` in a child process; check its exit code; return the
    result (text). `env`: variables on top of ours, None removes one; the child
    imports this project unless told PYTHONPATH=None."""
    env = subprocess_env(**{"PYTHONPATH": str(ROOT), **env})
    result = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env={k: v for k, v in env.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == exit_code, result.stderr[-3000:]
    return result


def subprocess_env(**extra):
    """The environment of a child run of the script."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def fake_run(output_dir, epochs_done, epochs=3, saved_weights=True, **config):
    """A run folder as training leaves it, without training: run.json and backup;
    `config`, the run's settings that differ from None."""
    output_dir.mkdir(parents=True, exist_ok=True)
    config = {k: None for k in runs.RUN_CONFIG} | {"epochs": epochs} | config
    names = runs.OUTPUT_NAMES + [f"backup-{epochs_done:03d}", "backup-002"]
    runs.write_run_file(output_dir, {"config": config, "files": names, "pids": [999]})
    if epochs_done:
        backup = output_dir / f"backup-{epochs_done:03d}"
        backup.mkdir()
        if saved_weights:
            (backup / runs.BACKUP_WEIGHTS).write_bytes(b"weights")
        record = {"epoch": epochs_done, "folder": backup.name}
        (output_dir / runs.BACKUP_FILE).write_text(json.dumps(record))
    return output_dir


def resume_args(output_dir, *flags, epochs=None, **values):
    """The parsed flags of `--resume` and these flags for a run folder; `values`
    then replace parsed ones (resume=False, overwrite=True for --overwrite)."""
    argv = ["--output-dir", output_dir, "--resume", *flags]
    argv += ["--epochs", epochs] if epochs else []
    args = parse(*argv)
    vars(args).update(values)
    return args


def png_header(path, width, height):
    """A PNG that claims a size without holding the pixels (a few bytes)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks + chunk(b"IEND", b""))
    return path


def person(path, height, width):
    """A synthetic photo of people at this size."""
    image, _ = make_toy_people.render_sample(5, 0, 160, 160)
    Image.fromarray(image).resize((width, height), Image.BILINEAR).save(path)
    return path


class Constant:
    """A stand-in model: the same logits for every pixel."""

    input_shape = (None, 16, 16, 3)

    def __init__(self, logits):
        self.logits = np.asarray(logits, np.float32)

    def predict_on_batch(self, images):
        return np.broadcast_to(self.logits, (*images.shape[:3], len(self.logits)))


def write_clip(path, count=5, noise=20, size=(96, 70), fourcc="MJPG", fps=12.0):
    """A still synthetic person with fresh noise in every frame, as a video file."""
    image = cv2.resize(make_toy_people.render_sample(3, 0)[0], size).astype(float)
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for _ in range(count):
        noisy = image + rng.normal(0, noise, image.shape)
        writer.write(cv2.cvtColor(noisy.clip(0, 255).astype(np.uint8), 4))  # to BGR
    writer.release()
    return path
