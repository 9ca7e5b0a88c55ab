"""Nothing the user made is deleted, replaced or read by mistake.

A run, --overwrite, --evaluate, --export, --predict, --download and the notebook
conversion remove or replace only what this project provably made; anything
else in the way is one `error:` line. Special files are skipped, never hung on;
decompression bombs are refused from their header; temporary files live in
private folders.
"""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from argparse import Namespace

import filelock
import keras
import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
from conftest import (
    ROOT,
    fails_with,
    fake_run,
    resume_args,
    run_args,
    run_python,
    split,
    subprocess_env,
)
from data import make_toy_people
from deeplab_support import UserError, cli, datasets, export, files, notebook, runs
from deeplab_support.classes import CIHP


def user_files(folder):
    """Plant files a user might keep where a run writes; return name -> text."""
    planted = {
        "backup-2019/archive_index.txt": "index",
        "backup-plan.txt": "plan",
        ".tmp-notes.txt": "notes",
        "my_thesis.txt": "thesis",
    }
    for name, text in planted.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return planted


def untouched(folder, planted):
    """Whether every planted file is still there with its text."""
    return all((folder / name).read_text() == text for name, text in planted.items())


def args_for(output_dir, *flags):
    """Parsed training flags for a run folder."""

    return cli.parse_args(dl.DEFAULTS, ["--output-dir", str(output_dir), *flags])


def test_a_run_never_deletes_lookalike_names_of_the_user(tmp_path):
    planted = user_files(tmp_path)
    runs.open_run(args_for(tmp_path))
    runs.open_run(args_for(tmp_path, "--overwrite"))  # and a second run over it
    assert untouched(tmp_path, planted)


@pytest.mark.parametrize(
    "name", ["model.keras", "history.csv", "backup.json", "README.md"]
)
def test_overwrite_refuses_a_users_file_where_a_run_writes(tmp_path, name):
    target = tmp_path / name
    target.write_text("mine")
    with pytest.raises(UserError, match=f"{name}.*not made by this project"):
        runs.open_run(args_for(tmp_path, "--overwrite"))
    assert target.read_text() == "mine"


def test_a_users_folder_named_as_a_later_epochs_backup_is_refused_first(tmp_path):
    (tmp_path / "backup-003").mkdir()
    (tmp_path / "backup-003" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="backup-003 was not made by this project"):
        runs.open_run(args_for(tmp_path, "--epochs", "3"))
    assert (tmp_path / "backup-003" / "keep.txt").read_text() == "mine"


def test_a_planted_link_at_a_temporary_name_is_never_written_through(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / f".tmp-{os.getpid()}-metrics.json")
    runs.claim(tmp_path, ["metrics.json"])
    with pytest.raises(UserError, match="is in the way"):
        runs.write_json(tmp_path / "metrics.json", {"a": 1})
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("name", ["../outside.txt", "backup-1/../../outside.txt", ".."])
def test_a_manifest_naming_files_outside_its_folder_is_refused(tmp_path, name):
    (tmp_path / "outside.txt").write_text("mine")
    output_dir = tmp_path / "out"
    (output_dir / "backup-1").mkdir(parents=True)  # so that the path resolves
    manifest = {"made_by": runs.MADE_BY, "config": {}, "files": [name], "pids": []}
    (output_dir / runs.RUN_FILE).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="damaged or was not written by this project"):
        runs.open_run(args_for(output_dir, "--overwrite"))
    assert (tmp_path / "outside.txt").read_text() == "mine"


def test_the_atomic_writer_refuses_a_name_its_writer_did_not_claim(tmp_path):
    (tmp_path / "notes.txt").write_text("the user's")
    runs.claim(tmp_path, ["metrics.json"])  # a writer that forgot notes.txt
    with pytest.raises(RuntimeError, match="without being claimed"):
        runs.write_json(tmp_path / "notes.txt", {"a": 1})
    assert (tmp_path / "notes.txt").read_text() == "the user's"
    runs.write_json(tmp_path / "metrics.json", {"a": 1})  # claimed: written


def test_a_planted_file_at_a_temporary_name_is_never_overwritten(tmp_path):
    planted = tmp_path / f".tmp-{os.getpid()}-history.csv"
    planted.write_text("the user's")
    runs.claim(tmp_path, ["history.csv"])
    with pytest.raises(UserError, match="is in the way"):
        with runs.atomic_path(tmp_path / "history.csv") as tmp:
            tmp.write_text("ours")
    assert planted.read_text() == "the user's"
    assert not (tmp_path / "history.csv").exists()


def test_export_never_replaces_a_users_folder(tiny_run, tmp_path):
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "my_notes.txt").write_text("mine")
    model, classes = cli.load_model(tiny_run / "model.keras", "--model")
    with pytest.raises(UserError, match="saved_model was not made by this project"):
        export.export_model(model, "saved_model", tmp_path, classes)
    assert (tmp_path / "saved_model" / "my_notes.txt").read_text() == "mine"


def scores_and_matrix():
    """Evaluation results for two classes, as --evaluate writes them."""
    matrix = np.array([[5, 1], [2, 8]])
    scores = {"mean_iou": 0.5, "per_class_iou": {"a": 0.4, "b": 0.6}}
    return scores, matrix


def test_evaluate_checks_its_output_folder_before_any_work(tmp_path, capsys):
    (tmp_path / "evaluation.json").write_text("my notes")
    argv = ["--evaluate", tmp_path / "not_loaded_yet.keras", "--output-dir", tmp_path]
    fails_with(capsys, argv, "evaluation.json was not made by this project")
    assert (tmp_path / "evaluation.json").read_text() == "my notes"


def test_evaluate_replaces_its_own_outputs(tmp_path, capsys):
    runs.claim(tmp_path, cli.EVALUATION_NAMES, "--evaluate")
    cli.print_scores(*scores_and_matrix(), tmp_path)
    cli.print_scores(*scores_and_matrix(), tmp_path)  # a second --evaluate
    assert json.loads((tmp_path / "evaluation.json").read_text())["mean_iou"] == 0.5
    owned = runs.read_run_file(tmp_path)["files"]
    assert set(cli.EVALUATION_NAMES) <= set(owned)


def test_a_claim_removes_what_a_killed_writer_left_half_written(tmp_path):
    runs.claim(tmp_path, cli.EVALUATION_NAMES, "--evaluate")
    manifest = runs.read_run_file(tmp_path)
    runs.write_run_file(tmp_path, {**manifest, "pids": [999]})  # killed since
    (tmp_path / ".tmp-999-evaluation.json").write_text("half")
    (tmp_path / ".tmp-999-notes.txt").write_text("the user's")  # not a listed name
    runs.claim(tmp_path, cli.EVALUATION_NAMES, "--evaluate")
    assert (tmp_path / ".tmp-999-notes.txt").exists()
    assert not (tmp_path / ".tmp-999-evaluation.json").exists()
    assert runs.read_run_file(tmp_path)["pids"] == [os.getpid()]


def test_a_new_run_keeps_the_folders_exports_and_predictions(tmp_path):
    runs.claim(tmp_path, ["model.onnx"], "--export")  # as --export did earlier
    (tmp_path / "model.onnx").write_text("exported")
    fake_predict([photo_folder(tmp_path / "photos")], tmp_path)
    runs.open_run(args_for(tmp_path))
    assert (tmp_path / "model.onnx").read_text() == "exported"
    assert (tmp_path / "photo_mask.png").is_file()


def photo_folder(folder, names=("photo.png", "other.jpg")):
    """A folder of small photos."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / name)
    return folder


def fake_predict(photos, output_dir):
    """What the --predict loop does, with a fixed prediction instead of a model."""
    colored = np.zeros((8, 8, 3), np.uint8)
    predicted = np.zeros((8, 8), np.int64)
    for _, prefix in cli.read_photos([str(p) for p in photos], output_dir):
        cli.save_prediction(prefix, colored, colored, predicted, CIHP)


def test_predict_into_its_input_folder_keeps_the_users_files(tmp_path):
    folder = photo_folder(tmp_path / "c")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "photo_overlay.png")  # mine
    mine = (folder / "photo_overlay.png").read_bytes()
    fake_predict([folder], folder)
    assert (folder / "photo_overlay.png").read_bytes() == mine
    count = len(list(folder.iterdir()))
    fake_predict([folder], folder)  # a second run reads none of its own outputs
    assert len(list(folder.iterdir())) == count
    assert not list(folder.glob("*_mask_mask.png"))


@pytest.mark.parametrize("where", ["parent", "child"])
def test_predict_never_reads_its_outputs_in_a_parent_or_child(tmp_path, where):
    folder = photo_folder(tmp_path / "in")
    output_dir = tmp_path if where == "parent" else folder / "out"
    fake_predict([folder, tmp_path] if where == "parent" else [folder], output_dir)
    before = sorted(output_dir.iterdir())
    fake_predict([folder, tmp_path] if where == "parent" else [folder], output_dir)
    assert sorted(output_dir.iterdir()) == before


def test_predict_skips_a_fifo_a_folder_and_broken_links(tmp_path, capsys):
    folder = photo_folder(tmp_path / "in")
    os.mkfifo(folder / "fifo.png")
    (folder / "folder.jpg").mkdir()
    os.symlink(folder / "gone.png", folder / "dangling.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (fake_predict([folder], tmp_path / "out"), done.set()),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=60)
    assert done.is_set(), "--predict hung on a special file"
    out = capsys.readouterr().out
    assert out.count("warning: skipping") == 4
    assert (tmp_path / "out" / "photo_mask.png").is_file()
    assert (tmp_path / "out" / "other_mask.png").is_file()
    assert stat.S_ISFIFO(os.stat(folder / "fifo.png").st_mode)


def test_predict_is_refused_while_another_run_holds_its_folder(tmp_path):
    held = filelock.FileLock(runs.lock_file(tmp_path / "out"), thread_local=False)
    held.acquire(timeout=0)  # as a training run in that folder holds it
    try:
        with pytest.raises(UserError, match="another run of this project is using"):
            fake_predict([photo_folder(tmp_path / "in")], tmp_path / "out")
    finally:
        held.release()
    assert not list((tmp_path / "out").iterdir())


def test_a_failed_predict_leaves_the_names_it_never_wrote_to_the_user(tmp_path):
    out, blank = tmp_path / "out", np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(OSError):  # the disk fills up after the first photo
        for _, prefix in cli.read_photos([photo_folder(tmp_path / "in")], out):
            cli.save_prediction(prefix, blank, blank, blank[..., 0], CIHP)
            raise OSError(errno.ENOSPC, "No space left on device")
    runs.release_unwritten()  # as the process's exit does
    (out / "photo_mask.png").write_text("mine")  # the user's, under an output name
    fake_predict([tmp_path / "in" / "photo.png"], out)
    assert (out / "photo_mask.png").read_text() == "mine"
    assert (out / "photo-2_mask.png").is_file()


def test_predict_skips_a_named_output_of_its_own(tmp_path, capsys):
    folder = photo_folder(tmp_path / "in")
    fake_predict([folder / "photo.png"], folder)
    with pytest.raises(UserError, match="no .jpg or .png images"):
        fake_predict([folder / "photo_mask.png"], folder)
    assert "photo_mask.png: it is an output of this project" in capsys.readouterr().out


def run_briefly(function, seconds=60):
    """Run function in a thread; fail the test if it has not returned in time."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed back to the test below
            outcome["error"] = error

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert not worker.is_alive(), f"{function} hung on a special file"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_a_fifo_mask_is_skipped_in_training(cihp_copy, capsys):
    masks = cihp_copy / "Training" / "Category_ids"
    first = sorted(masks.iterdir())[0]
    first.unlink()
    os.mkfifo(first)
    with pytest.raises(UserError, match="have no mask"):
        run_briefly(lambda: split(cihp_copy, 8, 4))
    assert f"warning: skipping {first}: not a regular file" in capsys.readouterr().out


def test_a_fifo_colormap_is_an_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "human_colormap.mat")
    with pytest.raises(UserError, match="human_colormap.mat cannot be read"):
        run_briefly(lambda: datasets.cihp_colors(tmp_path / "human_colormap.mat"))


def test_a_fifo_as_the_model_is_an_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "model.keras")
    with pytest.raises(UserError, match="model.keras is not a regular file"):
        run_briefly(lambda: cli.load_model(tmp_path / "model.keras", "--model"))


def test_pillows_bomb_limit_is_never_loosened():
    import demo  # noqa: F401  (importing the demo and the tutorial changes nothing)

    assert Image.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3  # Pillow's own


def test_plain_copies_are_written_in_the_private_folder(tmp_path):
    image = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[files.EXIF_ORIENTATION] = 6
    Image.new("RGB", (8, 4)).save(image, exif=exif)
    copy = files.check_image(image)
    assert os.path.dirname(copy) == str(files.private_dir("inputs"))


def test_an_unwritable_temp_location_is_one_error(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    monkeypatch.setattr(files, "_private_dirs", {})
    with pytest.raises(UserError, match="cannot create a temporary folder.*TMPDIR"):
        files.private_dir("inputs")


def test_private_folders_are_removed_when_the_process_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_private_dirs", {})
    folder = files.private_dir("inputs")
    (folder / "copy.png").write_bytes(b"x")
    files.remove_private_dirs()  # what the exit handlers and the excepthook call
    assert not folder.exists()


@pytest.mark.slow
def test_private_folders_are_gone_when_a_script_exits(tmp_path):
    code = "from deeplab_support import files; print(files.private_dir('inputs'))"
    done = run_python("-c", code, TMPDIR=str(tmp_path))
    assert done.stdout.startswith(str(tmp_path / "deeplabv3_plus-inputs-"))
    assert not list(tmp_path.iterdir())


def test_an_error_exit_removes_the_private_folders(monkeypatch, capsys):
    monkeypatch.setattr(files, "_private_dirs", {})
    folder = files.private_dir("inputs")

    def exit_now(code):
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", exit_now)  # the excepthook ends the process
    with pytest.raises(SystemExit):
        cli.excepthook(None, UserError, UserError("a user's mistake"), None)
    assert not folder.exists()
    assert capsys.readouterr().err == "error: a user's mistake\n"


def test_a_link_planted_where_an_example_goes_is_never_written_through(tmp_path):
    import demo

    victim = tmp_path / "precious.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / f"person_{demo.EXAMPLE_INDICES[0]}.png")
    with pytest.raises(FileExistsError):
        demo.write_examples(tmp_path)
    assert victim.read_text() == "precious"


def test_the_lock_cache_must_be_a_private_folder_of_the_user(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "deeplabv3_plus").mkdir()
    os.symlink(tmp_path, tmp_path / "deeplabv3_plus" / "locks")  # planted link
    with pytest.raises(UserError, match="is not a private folder of yours"):
        runs.lock(tmp_path / "out")


def classifier(path):
    """Save a model that outputs one score per class for the whole image."""
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(20)(pooled)).save(path)
    return path


def test_a_model_without_per_pixel_scores_is_refused(tmp_path):
    path = classifier(tmp_path / "classifier.keras")
    with pytest.raises(UserError, match="not one score per class for every pixel"):
        cli.load_model(path, "--model")


def test_the_demo_refuses_such_a_model_before_serving(tmp_path):
    import demo

    path = classifier(tmp_path / "classifier.keras")
    with pytest.raises(UserError, match="not one score per class for every pixel"):
        demo.main(["--model", str(path)])


@pytest.mark.slow
def test_the_demo_refuses_such_a_model_with_one_error_line(tmp_path):
    path = classifier(tmp_path / "classifier.keras")
    done = run_python("demo.py", "--model", path, exit_code=2)
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ") and "every pixel" in done.stderr


def test_the_demo_keeps_uploads_in_a_private_bounded_cache(monkeypatch):
    import demo

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    examples = demo.write_examples(files.private_dir("examples"))

    class Segmenter:
        classes = CIHP

        def __call__(self, path):
            return None, None, "", "stub"

    segmenter = Segmenter()

    app = demo.build_app(segmenter, examples)
    cache = os.environ["GRADIO_TEMP_DIR"]
    assert cache == str(files.private_dir("gradio"))
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert app.delete_cache == demo.DELETE_CACHE


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
    with pytest.raises(FileExistsError, match="is not a toy-people data set"):
        make_toy_people.generate(tmp_path / "toy", num_images=2, num_val_images=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]
    assert (tmp_path / "toy" / "mine.txt").read_text() == "mine"


def test_a_run_leaves_no_lock_file_in_its_folder(tiny_run):
    assert not [p.name for p in tiny_run.iterdir() if "lock" in p.name]
    assert (tiny_run / "my_notes.txt").read_text() == "the user's"


def test_a_real_run_keeps_what_the_user_put_in_its_folder(capsys, toy_root, tmp_path):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    planted = user_files(output_dir)
    (output_dir / "model.keras").write_text("mine")
    fails_with(capsys, run_args(toy_root, output_dir, "--overwrite"), "model.keras")
    assert untouched(output_dir, planted)
    assert (output_dir / "model.keras").read_text() == "mine"


def test_output_dir_that_is_a_file(capsys, toy_root, tmp_path):
    (tmp_path / "file").write_text("")
    fails_with(capsys, run_args(toy_root, tmp_path / "file"), "is a file")


def test_output_dir_that_cannot_be_created(capsys, toy_root, tmp_path):
    (tmp_path / "file").write_text("")
    fails_with(capsys, run_args(toy_root, tmp_path / "file" / "out"), "--output-dir")


def test_a_second_run_refuses_to_overwrite(capsys, tiny_run, toy_root):
    fails_with(capsys, run_args(toy_root, tiny_run), "--resume", "--overwrite")


def test_a_run_keeps_one_committed_backup_and_the_users_files(tiny_run):
    assert json.loads((tiny_run / "run.json").read_text())["config"]["epochs"] == 1
    assert runs.completed_epochs(tiny_run) == 1
    backups = sorted(p.name for p in tiny_run.glob("backup-*"))
    assert backups == ["backup-001"]
    assert (tiny_run / "my_notes.txt").read_text() == "the user's"
    assert runs.read_backup(tiny_run)["folder"] == "backup-001"
    keras.saving.load_model(tiny_run / "model.keras")


def test_disk_full_names_the_folder_and_keeps_the_last_good_epoch(capsys, tmp_path):
    output_dir = fake_run(tmp_path / "out", epochs_done=2)
    full = OSError(errno.ENOSPC, "No space left on device", str(output_dir / "x"))
    assert cli.explain(full, Namespace(output_dir=str(output_dir), train=True)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the disk holding " + str(output_dir) + " is full")
    assert "last good epoch (2)" in err and "--resume" in err and "\n" not in err


def test_disk_full_in_predict_says_nothing_of_epochs(capsys, tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    assert cli.explain(full, Namespace(output_dir=str(tmp_path), train=False)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: the disk holding {tmp_path} is full; free some space."


def test_failed_write_of_run_file_is_one_line(capsys, toy_root, tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runs, "write_json", full)
    err = fails_with(capsys, run_args(toy_root, tmp_path / "out"), "is full")
    assert "nothing is kept" in err


def test_other_write_errors_name_the_file(tmp_path):
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "m.keras"))
    message = str(cli.output_error(denied, str(tmp_path)))
    assert str(tmp_path / "m.keras") in message and "Permission denied" in message
    elsewhere = OSError(errno.EACCES, "Permission denied", "/etc/passwd")
    assert cli.output_error(elsewhere, str(tmp_path)) is elsewhere  # not ours


def test_a_second_training_is_refused_while_the_first_holds_the_lock(tmp_path):
    first = filelock.FileLock(runs.lock_file(tmp_path), thread_local=False)
    first.acquire(timeout=0)  # as the first run holds it
    try:
        with pytest.raises(UserError, match="another run of this project is using"):
            runs.lock(tmp_path)
    finally:
        first.release()
    assert not list(tmp_path.iterdir())  # the lock leaves no file in the folder


@pytest.mark.slow
def test_the_lock_of_a_killed_run_is_released(tmp_path):
    code = (
        "import sys; from deeplab_support import runs; "
        f"runs.lock({str(tmp_path)!r}); print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match="another run of this project"):
        runs.lock(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    runs.lock(tmp_path)  # the OS released the dead run's lock


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_a_damaged_run_json_stops_resume_and_overwrite_touching_nothing(tmp_path, flag):
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    (output_dir / runs.RUN_FILE).write_text('{"config": {"ima')  # truncated
    before = sorted(p.name for p in output_dir.iterdir())
    overwrite = flag == "--overwrite"
    args = resume_args(output_dir, resume=not overwrite, overwrite=overwrite)
    with pytest.raises(UserError, match="run.json is damaged or was not written"):
        runs.prepare_resume(args)
    assert sorted(p.name for p in output_dir.iterdir()) == before
