"""Nothing the user made is deleted, replaced or read by mistake.

A run, --overwrite, --evaluate, --export, --predict, the demo and the notebook
conversion replace only what this project provably made; anything else in the
way is one `error:` line. Special files are never hung on; temporary files live
in private folders; one run at a time holds a folder.
"""

import errno
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from multiprocessing.pool import ThreadPool

import filelock
import numpy as np
import pytest
from PIL import Image

import demo
from conftest import ROOT, fails_with, fake_run, parse, resume_args
from conftest import run_args, run_python, split, subprocess_env
from data import make_toy_people
from deeplab_support import UserError, cli, datasets, export, files, metrics
from deeplab_support import notebook, runs
from deeplab_support.classes import CIHP, read_class_map


def test_a_new_run_deletes_only_the_earlier_runs_own_files(tmp_path):
    (tmp_path / "backup-2019").mkdir()
    planted = ["backup-2019/index.txt", "backup-plan.txt", ".tmp-notes.txt", "my.txt"]
    for name in planted:  # the user's, at names like a run's
        (tmp_path / name).write_text("mine")
    runs.claim(tmp_path, ["model.onnx"], "--export")  # as --export did earlier
    (tmp_path / "model.onnx").write_text("exported")
    fake_predict([photo_folder(tmp_path / "photos")], tmp_path)
    runs.open_run(parse("--output-dir", tmp_path))
    runs.open_run(parse("--output-dir", tmp_path, "--overwrite"))  # a second run
    assert all((tmp_path / name).read_text() == "mine" for name in planted)
    assert (tmp_path / "model.onnx").read_text() == "exported"
    assert (tmp_path / "photo_mask.png").is_file()


# backup-003: the folder that epoch 3 of 3 writes
OURS = ["model.keras", "history.csv", "backup.json", "README.md", "backup-003/mine.txt"]


@pytest.mark.parametrize("name", OURS + ["evaluation.json"])
def test_overwrite_and_evaluate_refuse_a_users_file_where_they_write(
    capsys, toy_root, tmp_path, name
):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text("mine")
    argv = run_args(toy_root, tmp_path, "--overwrite", "--epochs", "3")
    if name == "evaluation.json":  # checked before any work: the model is not read
        argv = ["--evaluate", tmp_path / "not_loaded.keras", "--output-dir", tmp_path]
    mine = tmp_path / name.split("/")[0]
    fails_with(capsys, argv, f"{mine} was not made by this project")
    assert (tmp_path / name).read_text() == "mine"


@pytest.mark.parametrize("planted", ["file", "link"])
def test_a_planted_file_or_link_at_a_temporary_name_is_never_written(tmp_path, planted):
    temporary = tmp_path / f".tmp-{os.getpid()}-metrics.json"
    victim = tmp_path / "precious.txt" if planted == "link" else temporary
    victim.write_text("precious")
    if planted == "link":
        os.symlink(victim, temporary)
    runs.claim(tmp_path, ["metrics.json"])
    with pytest.raises(UserError, match="is in the way"):
        runs.write_json(tmp_path / "metrics.json", {"a": 1})
    assert victim.read_text() == "precious"
    assert not (tmp_path / "metrics.json").exists()


def test_the_atomic_writer_refuses_a_name_its_writer_did_not_claim(tmp_path):
    (tmp_path / "notes.txt").write_text("the user's")
    runs.claim(tmp_path, ["metrics.json"])  # a writer that forgot notes.txt
    with pytest.raises(RuntimeError, match="without being claimed"):
        runs.write_json(tmp_path / "notes.txt", {"a": 1})
    assert (tmp_path / "notes.txt").read_text() == "the user's"
    runs.write_json(tmp_path / "metrics.json", {"a": 1})  # claimed: written


def test_export_never_replaces_a_users_folder(tiny_run, tmp_path):
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "my_notes.txt").write_text("mine")
    model, classes = cli.load_model(tiny_run / "model.keras", "--model")
    with pytest.raises(UserError, match="saved_model was not made by this project"):
        export.export_model(model, "saved_model", tmp_path, classes)
    assert (tmp_path / "saved_model" / "my_notes.txt").read_text() == "mine"


def test_evaluate_replaces_its_own_outputs(tmp_path, capsys):
    scores = {"mean_iou": 0.5, "per_class_iou": {"a": 0.4, "b": 0.6}}
    per_image, ids = metrics.PerImage(CIHP), np.zeros((4, 4), np.uint8)
    matrix = np.array([[5, 1], [2, 8]])
    per_image.add("x.png", matrix, np.zeros((4, 4, 3), np.uint8), ids, ids)
    runs.claim(tmp_path, runs.EVALUATION_NAMES, "--evaluate")
    for _ in range(2):  # a first and a second --evaluate
        cli.print_scores(scores, matrix, per_image, tmp_path)
    assert json.loads((tmp_path / "evaluation.json").read_text())["mean_iou"] == 0.5
    assert set(runs.EVALUATION_NAMES) <= set(runs.read_run_file(tmp_path)["files"])


def photo_folder(folder, names=("photo.png", "other.jpg")):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / name)
    return folder


def fake_predict(photos, output_dir):
    """What the --predict loop does, with a fixed prediction instead of a model."""
    colored = np.zeros((8, 8, 3), np.uint8)
    pictures, predicted = dict(mask=colored, overlay=colored), colored[..., 0]
    inputs = cli.claim_predictions([str(p) for p in photos], output_dir)
    for _, prefix in cli.read_photos(inputs):
        cli.save_prediction(prefix, pictures, predicted, CIHP)


@pytest.mark.parametrize("where", ["same", "parent", "child"])
def test_predict_keeps_the_users_files_and_never_reads_its_outputs(tmp_path, where):
    folder = photo_folder(tmp_path / "in")
    output_dir = {"same": folder, "parent": tmp_path, "child": folder / "out"}[where]
    photos = [folder, tmp_path] if where == "parent" else [folder]
    photo_folder(output_dir, ["photo_overlay.png"])  # the user's, at an output name
    mine = (output_dir / "photo_overlay.png").read_bytes()
    fake_predict(photos, output_dir)
    before = sorted(output_dir.iterdir())
    fake_predict(photos, output_dir)  # a second run reads none of its own outputs
    assert sorted(output_dir.iterdir()) == before
    assert (output_dir / "photo_overlay.png").read_bytes() == mine


def run_briefly(function, seconds=60):
    """Run function in a thread; fail the test if it has not returned in time."""
    pool = ThreadPool(1)  # daemon threads: a hung one does not hold up the exit
    try:
        return pool.apply_async(function).get(timeout=seconds)
    except multiprocessing.TimeoutError:
        pytest.fail(f"{function} hung on a special file")
    finally:
        pool.terminate()


def test_predict_skips_a_fifo_a_folder_and_broken_links(tmp_path, capsys):
    folder, out = photo_folder(tmp_path / "in"), tmp_path / "out"
    os.mkfifo(folder / "fifo.png")
    (folder / "folder.jpg").mkdir()
    os.symlink(folder / "gone.png", folder / "dangling.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    run_briefly(lambda: fake_predict([folder], out))
    assert capsys.readouterr().err.count("warning: skipping") == 4
    assert all((out / f"{n}_mask.png").is_file() for n in ["photo", "other"])
    assert stat.S_ISFIFO(os.stat(folder / "fifo.png").st_mode)


@pytest.mark.parametrize("mode", ["training", "predict", "download"])
def test_a_second_run_is_refused_while_another_holds_the_folder(tmp_path, mode):
    photos, out = [photo_folder(tmp_path / "in")], tmp_path / "out"
    fix = "choose another --output-dir"
    if mode == "download":
        fix = "as --data-dir without --download"
    out.mkdir()
    held = filelock.FileLock(runs.lock_file(out), thread_local=False)
    with held.acquire(timeout=0):  # as a run in that folder holds it
        with pytest.raises(UserError, match=f"another run of .* finish or .*{fix}"):
            if mode == "training":
                runs.open_run(parse("--output-dir", out))
            elif mode == "predict":
                fake_predict(photos, out)
            else:
                datasets.download_cihp(out / "instance-level_human_parsing")
    assert not list(out.iterdir())  # the lock leaves no file in the folder


def test_a_failed_predict_leaves_the_names_it_never_wrote_to_the_user(tmp_path):
    out, blank = tmp_path / "out", np.zeros((8, 8, 3), np.uint8)
    inputs = cli.claim_predictions([photo_folder(tmp_path / "in")], out)
    with pytest.raises(OSError):  # the disk fills up after the first photo
        for _, prefix in cli.read_photos(inputs):
            cli.save_prediction(prefix, dict(mask=blank), blank[..., 0], CIHP)
            raise OSError(errno.ENOSPC, "No space left on device")
    runs.release_unwritten()  # as the process's exit does
    (out / "photo_mask.png").write_text("mine")  # the user's, under an output name
    fake_predict([tmp_path / "in" / "photo.png"], out)
    assert (out / "photo_mask.png").read_text() == "mine"
    assert (out / "photo-2_mask.png").is_file()


def test_predict_skips_a_named_output_of_its_own(tmp_path, capsys):
    folder = photo_folder(tmp_path / "in")
    fake_predict([folder / "photo.png"], folder)
    with pytest.raises(UserError, match="no .jpg or .png images or videos"):
        fake_predict([folder / "photo_mask.png"], folder)
    assert "photo_mask.png: it is an output of this project" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, read",
    [
        ("Training/Category_ids/0000000.png", lambda fifo: split(fifo.parents[2], 8)),
        ("human_colormap.mat", datasets.cihp_colors),
        ("model.keras", lambda fifo: cli.load_model(fifo, "--model")),
        ("labelmap.txt", datasets.read_labelmap),
        ("map.txt", lambda fifo: read_class_map(fifo, CIHP)),
    ],
)
def test_a_fifo_is_named_not_a_regular_file_not_hung_on(cihp_copy, capsys, name, read):
    fifo = cihp_copy / name
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    with pytest.raises(UserError) as error:  # a mask: that image "has no mask"
        run_briefly(lambda: read(fifo))
    said = str(error.value) + capsys.readouterr().err
    assert str(fifo) in said and "not a regular file" in said, said


@pytest.mark.parametrize("name", [runs.RUN_FILE, runs.BACKUP_FILE])
def test_a_fifo_at_a_run_record_is_damaged_not_hung_on(tmp_path, name):
    os.mkfifo(tmp_path / name)
    with pytest.raises(UserError, match=f"{name} is damaged"):
        run_briefly(lambda: (runs.read_backup(tmp_path), runs.read_run_file(tmp_path)))


def test_plain_copies_are_written_in_the_private_folder(tmp_path):
    image = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[files.EXIF_ORIENTATION] = 6
    Image.new("RGB", (8, 4)).save(image, exif=exif)
    copy = files.check_image(image)
    assert os.path.dirname(copy) == str(files.private_dir("inputs"))


def test_an_unwritable_temp_location_is_one_error(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    monkeypatch.setattr(files, "_private_dirs", {})
    with pytest.raises(UserError, match="cannot create a temporary folder.*TMPDIR"):
        files.private_dir("inputs")


# A script that makes a private folder (as decoding a photo does) and builds a
# tf.data pipeline (TensorFlow's autograph writes each function's code to a file).
LEAVES_TEMPORARIES = """
import sys
from deeplab_support import UserError, cli, files
from tensorflow import data
files.private_dir("inputs")
data.Dataset.range(2).map(lambda x: x + 1)
sys.excepthook = lambda *error: cli.excepthook(None, *error)
if sys.argv[1:] == ["error"]:
    raise UserError("a user's mistake")
"""


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["success", "error"])
def test_no_temporary_file_outlives_the_script(tmp_path, ending):
    script, temporary = tmp_path / "script.py", tmp_path / "tmp"
    script.write_text(LEAVES_TEMPORARIES)  # a file: autograph reads its source
    temporary.mkdir()
    args = ["error"] if ending == "error" else []
    done = run_python(script, *args, exit_code=2 if args else 0, TMPDIR=temporary)
    assert done.stderr == ("error: a user's mistake\n" if args else "")
    assert not list(temporary.iterdir())


def test_a_link_planted_where_an_example_goes_is_never_written_through(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / f"person_{demo.EXAMPLE_INDICES[0]}.png")
    with pytest.raises(FileExistsError):
        demo.write_examples(tmp_path)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("planted", ["link", "folder open to others"])
def test_the_lock_cache_must_be_a_private_folder_of_the_user(
    tmp_path, monkeypatch, planted
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    locks = tmp_path / "deeplabv3_plus" / "locks"
    locks.parent.mkdir()
    if planted == "link":
        os.symlink(tmp_path, locks)
    else:  # where another user could plant a lock file
        locks.mkdir()
        locks.chmod(0o777)
    with pytest.raises(UserError, match="is not a private folder of yours"):
        runs.lock(tmp_path / "out")


def test_the_demo_keeps_uploads_in_a_private_bounded_cache(monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    examples = demo.write_examples(files.private_dir("examples"))

    def segmenter(path):
        return None, None, "", "stub"

    segmenter.classes = CIHP
    app = demo.build_app(segmenter, examples)
    cache = os.environ["GRADIO_TEMP_DIR"]
    assert cache == str(files.private_dir("gradio"))
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert app.delete_cache == demo.DELETE_CACHE


def test_the_demo_deletes_its_class_masks_as_gradio_its_uploads():
    old = files.private_dir("masks") / "old"
    old.mkdir()
    os.utime(old, (0, time.time() - demo.DELETE_CACHE[1] - 1))
    segmenter, ids = Namespace(classes=CIHP), np.zeros((4, 4), np.uint8)
    mask = demo.Segmenter.class_mask(segmenter, "photo.png", ids, ["Face"])
    assert os.path.isfile(mask) and not old.exists()


def test_an_edited_notebook_is_kept(tmp_path):
    target = notebook.write_notebook(target_path=tmp_path / "tutorial.ipynb")
    notebook.write_notebook(target_path=target)  # unedited: replaced
    edited = json.loads(target.read_text())
    edited["cells"][1]["source"] = "my own notes"
    target.write_text(json.dumps(edited))
    with pytest.raises(UserError, match="is not an unedited notebook"):
        notebook.write_notebook(target_path=target)
    assert json.loads(target.read_text())["cells"][1]["source"] == "my own notes"


def test_the_toy_set_never_replaces_a_users_folder(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "mine.txt").write_text("mine")
    with pytest.raises(UserError, match="toy was not made by this project"):
        make_toy_people.generate(tmp_path / "toy", num_images=2, num_val_images=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]
    assert (tmp_path / "toy" / "mine.txt").read_text() == "mine"


@pytest.mark.parametrize("where, phrase", [("", "is a file"), ("out", "--output-dir")])
def test_an_output_dir_that_is_or_is_under_a_file_is_refused(
    capsys, toy_root, tmp_path, where, phrase
):
    (tmp_path / "file").write_text("")
    fails_with(capsys, run_args(toy_root, tmp_path / "file" / where), phrase)


def test_a_second_run_refuses_to_overwrite(capsys, tiny_run, toy_root):
    fails_with(capsys, run_args(toy_root, tiny_run), "--resume", "--overwrite")


def test_a_run_keeps_one_committed_backup_and_the_users_files(tiny_run):
    assert json.loads((tiny_run / "run.json").read_text())["config"]["epochs"] == 1
    assert runs.completed_epochs(tiny_run) == 1
    assert [p.name for p in tiny_run.glob("backup-*")] == ["backup-001"]
    assert (tiny_run / "my_notes.txt").read_text() == "the user's"
    assert runs.read_backup(tiny_run)["folder"] == "backup-001"


def test_failed_write_of_run_file_is_one_line(capsys, toy_root, tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runs, "write_json", full)
    argv = run_args(toy_root, tmp_path / "out")
    fails_with(capsys, argv, "is full", "nothing is kept")


def test_a_failed_write_of_ours_names_the_full_disk_or_the_file(capsys, tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    assert cli.explain(full, Namespace(output_dir=str(tmp_path), train=False)) == 2
    err = capsys.readouterr().err  # outside training: no word of epochs
    assert err == f"error: the disk holding {tmp_path} is full; free some space.\n"
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "m.keras"))
    message = str(cli.output_error(denied, str(tmp_path)))
    assert str(tmp_path / "m.keras") in message and "Permission denied" in message
    elsewhere = OSError(errno.EACCES, "Permission denied", "/etc/passwd")
    assert cli.output_error(elsewhere, str(tmp_path)) is elsewhere  # not ours


@pytest.mark.slow
def test_the_lock_of_a_killed_run_is_released(tmp_path):
    code = "import sys; from deeplab_support import runs; runs.lock(sys.argv[1]); "
    code += "print('held', flush=True); sys.stdin.read()"
    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    argv = [sys.executable, "-c", code, tmp_path]
    holder = subprocess.Popen(argv, cwd=ROOT, env=subprocess_env(), **pipes)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match="another run of this project"):
        runs.lock(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    runs.lock(tmp_path)  # the OS released the dead run's lock


DAMAGED = [(None, runs.MADE_BY), (["../outside.txt"], runs.MADE_BY)]  # None: truncated
DAMAGED += [(["backup-1/../../outside.txt"], runs.MADE_BY), ([".."], runs.MADE_BY)]
DAMAGED += [(["model.keras"], "another tool")]


@pytest.mark.parametrize("resume", [True, False], ids=["--resume", "--overwrite"])
@pytest.mark.parametrize("listed, made_by", DAMAGED)
def test_a_damaged_or_foreign_run_json_is_refused_touching_nothing(
    tmp_path, resume, listed, made_by
):
    (tmp_path / "outside.txt").write_text("mine")
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    (output_dir / "backup-1").mkdir()  # so that the path resolves
    manifest = {"made_by": made_by, "config": {}, "files": listed, "pids": []}
    text = json.dumps(manifest) if listed else '{"config": {"ima'  # truncated
    (output_dir / runs.RUN_FILE).write_text(text)
    before = sorted(tmp_path.rglob("*"))
    args = resume_args(output_dir, resume=resume, overwrite=not resume)
    with pytest.raises(UserError, match="run.json is damaged or was not written"):
        runs.prepare_resume(args)
    assert sorted(tmp_path.rglob("*")) == before
