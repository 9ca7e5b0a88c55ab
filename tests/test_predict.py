"""--predict: your own photos in; colour masks, overlays and class ids out."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import run_tutorial
from deeplab_support import UserError, cli, files, runs, video
from deeplab_support.classes import CIHP


def test_predict_writes_mask_and_overlay_at_the_photos_size(
    tiny_run, toy_root, tmp_path, capsys
):
    photos = sorted((toy_root / "Training" / "Images").glob("*.jpg"))[:3]
    folder = tmp_path / "album"
    folder.mkdir()
    grey = folder / os.fsdecode(b"grey\xff.png")  # a name that is not UTF-8
    Image.open(photos[2]).convert("L").save(grey)
    capsys.readouterr()  # its stdout, as many a terminal's, takes UTF-8 alone
    argv = ["--predict", photos[0], photos[1], folder]
    argv += ["--model", tiny_run / "model.keras", "--output-dir", tmp_path / "out"]
    run_tutorial(*argv)
    for stem, source in [(photos[0].stem, photos[0]), (grey.stem, grey)]:
        for kind in ["mask", "overlay"]:
            written = Image.open(tmp_path / "out" / f"{stem}_{kind}.png")
            assert written.size == Image.open(source).size and written.mode == "RGB"
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("%" in line for line in lines)
    assert lines[2].startswith("grey\\xff: ")  # as its warnings would name it


def test_a_palette_photo_with_a_transparent_colour_reads_without_a_warning(tmp_path):
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).convert("P").save(tmp_path / "p.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a library warning would be a line of noise
        pixels = files.read_photo(tmp_path / "p.png")
    assert pixels.shape == (8, 8, 3) and tuple(pixels[0, 0]) == (10, 20, 30)


def test_an_unreadable_photo_is_skipped_and_the_others_are_read(tmp_path, capsys):
    Image.new("RGB", (8, 6)).save(tmp_path / "good.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "bad.jpg", format="GIF")
    (tmp_path / "empty.png").write_bytes(b"")
    read = cli.read_photos(cli.claim_predictions([tmp_path], tmp_path / "out"))
    assert [(image.shape, path.name) for image, path in read] == [((6, 8, 3), "good")]
    out = capsys.readouterr().err
    assert "warning: skipped: image" in out and "bad.jpg is a GIF file" in out
    assert "empty.png" in out


@pytest.mark.parametrize(
    "names, phrase",
    [
        (["a.png"], "a.png is empty"),
        (["a.mp4"], "a.mp4 cannot be read"),
        (["a.png", "b.mp4"], "none of the photos and videos in .* read"),
    ],
)
def test_predict_with_no_readable_input_is_one_error_saying_why(
    tmp_path, capfd, names, phrase
):
    for name in names:
        (tmp_path / name).write_bytes(b"not a picture" if "b" in name else b"")
    inputs = cli.claim_predictions([tmp_path / name for name in names], tmp_path)
    with pytest.raises(UserError, match=phrase):
        list(cli.read_photos(inputs)) + list(video.read_clips(inputs, CIHP))
    lines = capfd.readouterr().err.splitlines()  # OpenCV's and FFmpeg's too
    assert all(line.startswith("warning: skipped: ") for line in lines), lines


def test_the_shares_printed_go_largest_first_and_a_sliver_is_under_a_tenth_of_a_percent(
    tmp_path, capsys
):
    predicted = np.zeros((100, 100), np.uint8)
    predicted[0, 0] = 1  # one pixel in 10,000 of Hat
    predicted[50:] = 13  # Face: a pixel more than Background, after Hat by id
    runs.claim(tmp_path, ["x_ids.png"], "--predict")
    cli.save_prediction(tmp_path / "x", {}, predicted, CIHP)
    assert capsys.readouterr().out == "x: Face 50.0%, Background 50.0%, Hat <0.1%\n"


@pytest.mark.parametrize(
    "names, prefixes",
    [
        (["a/x.jpg", "b/x.jpg"], ["x", "x-2"]),
        (["A.jpg", "a.jpg"], ["A", "a-2"]),  # one file on macOS and Windows: not here
        (["walk.jpg", "walk.mp4"], ["walk", "walk"]),  # walk_ids/ is not walk_ids.png
    ],
    ids=["one-name-in-two-folders", "names-differing-in-case", "a-photo-and-a-video"],
)
def test_inputs_of_one_name_get_outputs_whose_names_never_clash(
    tmp_path, names, prefixes
):
    inputs = [tmp_path / name for name in names]
    for path in inputs:
        path.parent.mkdir(exist_ok=True)
        if path.suffix == ".jpg":
            Image.new("RGB", (8, 8)).save(path)
        else:
            path.write_bytes(b"frames")  # only named, never opened here
    found = cli.claim_predictions(inputs, tmp_path / "out")
    assert [prefix.name for _, prefix in found] == prefixes


def test_a_photo_name_too_long_for_its_outputs_names_is_cut(tmp_path):
    photo = tmp_path / ("\u00e9" * 120 + ".jpg")  # 240 bytes: 255 take no suffix
    Image.new("RGB", (8, 8)).save(photo)
    groups = cli.mask_groups([",".join(CIHP.names)], CIHP)  # a 150-byte name
    kinds = cli.prediction_kinds(groups, cutout=True)
    inputs = cli.claim_predictions([photo, photo], tmp_path, kinds)
    cut = "\u00e9" * 80  # 160 bytes
    assert [prefix.name for _, prefix in inputs] == [cut, cut + "-2"]
    for image, prefix in cli.read_photos(inputs):
        pictures = {kind: image for kind in kinds if kind != "ids"}
        cli.save_prediction(prefix, pictures, image[..., 0], CIHP)
        assert all(path.exists() for path in cli.prediction_paths(prefix, kinds))


def test_predict_claims_the_outputs_of_its_photos_and_videos_at_once(
    tmp_path, monkeypatch
):
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.jpg")
    (tmp_path / "clip.mp4").write_bytes(b"frames")  # only named, never opened here
    claims, claim = [], runs.claim
    monkeypatch.setattr(runs, "claim", lambda *a, **k: claims.append(claim(*a, **k)))
    inputs = [tmp_path / "photo.jpg", tmp_path / "clip.mp4"]
    found = cli.claim_predictions(inputs, tmp_path / "out")
    expected = [("photo.jpg", "photo"), ("clip.mp4", "clip")]
    assert [(path.name, prefix.name) for path, prefix in found] == expected
    assert len(claims) == 1
    outputs = {"photo_mask.png", "photo_ids.png", "clip_overlay.mp4", "clip_ids"}
    assert outputs <= runs.owned_names(tmp_path / "out")
