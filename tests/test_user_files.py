"""Nothing the user made is deleted, replaced or read by mistake.

A run, --overwrite, --export and --predict remove or replace only what this
project provably made; anything else in the way is one `error:` line.
"""

import os
import stat
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import fails_with, run_args
from deeplab_support import UserError, cli, export, files, runs


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
    import deeplabv3_plus as dl

    return cli.parse_args(dl.__dict__, ["--output-dir", str(output_dir), *flags])


def test_a_run_never_deletes_lookalike_names_of_the_user(tmp_path):
    planted = user_files(tmp_path)
    args = args_for(tmp_path)
    runs.prepare_resume(args)
    runs.open_run(args)
    runs.unlock(tmp_path)
    args = args_for(tmp_path, "--overwrite")  # and a second run over the first
    runs.prepare_resume(args)
    runs.open_run(args)
    runs.unlock(tmp_path)
    assert untouched(tmp_path, planted)


@pytest.mark.parametrize("name", ["model.keras", "history.csv", "backup"])
def test_overwrite_refuses_a_users_file_where_a_run_writes(tmp_path, name):
    (tmp_path / name).mkdir() if name == "backup" else None
    target = tmp_path / name / "important.doc" if name == "backup" else tmp_path / name
    target.write_text("mine")
    args = args_for(tmp_path, "--overwrite")
    with pytest.raises(UserError, match=f"{name}.*not made by this project"):
        runs.prepare_resume(args)
    with pytest.raises(UserError, match="not made by this project"):
        runs.open_run(args)
    assert target.read_text() == "mine"


def test_a_users_backup_folder_of_the_next_epochs_name_is_refused(tmp_path):
    args = args_for(tmp_path)
    runs.open_run(args)
    runs.unlock(tmp_path)
    (tmp_path / "backup-001").mkdir()
    (tmp_path / "backup-001" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="backup-001 was not made by this project"):
        runs.claim(tmp_path, "backup-001")
    assert (tmp_path / "backup-001" / "keep.txt").read_text() == "mine"


def test_a_planted_link_at_a_temporary_name_is_never_written_through(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / f".tmp-{os.getpid()}-metrics.json")
    with pytest.raises(UserError, match="is in the way"):
        runs.write_json(tmp_path / "metrics.json", {"a": 1})
    assert victim.read_text() == "precious"


def test_export_never_replaces_an_existing_folder(tiny_run, tmp_path):
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "my_notes.txt").write_text("mine")
    model = cli.load_model(tiny_run / "model.keras", "--model")
    with pytest.raises(UserError, match="saved_model exists already"):
        export.export_model(model, "saved_model", tmp_path, None)
    assert (tmp_path / "saved_model" / "my_notes.txt").read_text() == "mine"


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
    for _, prefix in cli.photo_outputs([str(p) for p in photos], output_dir):
        cli.save_prediction(prefix, colored, colored, predicted)


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


def test_pillows_bomb_check_stays_on():
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 0


def bomb(path, side=30000):
    """A tiny 1-bit PNG whose header claims side x side pixels."""
    Image.new("1", (side, side)).save(path)
    return path


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    path = bomb(tmp_path / "bomb.png")
    with pytest.raises(UserError, match="bomb.png has more than 100 megapixels"):
        files.open_photo(path)


def test_the_demo_answers_a_bomb_with_its_own_message(tmp_path):
    import demo

    with pytest.raises(UserError, match="more than 25 megapixels"):
        demo.check_upload(str(bomb(tmp_path / "bomb.png")))


@pytest.mark.parametrize("content", [b"", b"just text", b"\x89PNG\r\n\x1a\n\0\0"])
def test_the_demo_names_the_file_not_the_server_path(tmp_path, content):
    import demo

    path = tmp_path / "secret" / "upload.png"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        demo.check_upload(str(path))
    assert "upload.png" in str(caught.value)
    assert str(path.parent) not in str(caught.value)


def test_temporary_folders_are_private_and_unpredictable(tmp_path):
    folder = files.private_dir("inputs")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert folder.name != "deeplabv3_plus_inputs" and folder.owner() == tmp_path.owner()


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


def test_a_model_without_per_pixel_scores_is_refused(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(20)(pooled))
    model.save(tmp_path / "classifier.keras")
    with pytest.raises(UserError, match="not one score per class for every pixel"):
        cli.load_model(tmp_path / "classifier.keras", "--model")


def test_a_real_run_keeps_what_the_user_put_in_its_folder(capsys, toy_root, tmp_path):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    planted = user_files(output_dir)
    (output_dir / "model.keras").write_text("mine")
    fails_with(capsys, run_args(toy_root, output_dir, "--overwrite"), "model.keras")
    assert untouched(output_dir, planted)
    assert (output_dir / "model.keras").read_text() == "mine"
