"""--predict on a video: an overlay video and every frame's ids, the flicker between
frames, and --temporal-smoothing to steady it."""

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as tutorial
from conftest import fails_with, run_tutorial, write_clip
from deeplab_support import cli, video
from deeplab_support.classes import CIHP


def decoded(path):
    """The frames of a video as OpenCV decodes them, in RGB."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read())[0]:
        frames.append(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
    return frames, capture.get(cv2.CAP_PROP_FPS)


@pytest.mark.slow
@pytest.mark.parametrize("fourcc, name", [("MJPG", "clip.avi"), ("mp4v", "clip.mp4")])
def test_each_frame_s_ids_are_what_predict_writes_for_that_frame(
    tiny_run, tmp_path, capsys, fourcc, name
):
    clip = write_clip(tmp_path / name, fourcc=fourcc)
    model = ["--model", tiny_run / "model.keras"]
    run_tutorial("--predict", clip, *model, "--output-dir", tmp_path / "out")
    assert "flicker" in capsys.readouterr().out
    frames, fps = decoded(clip)
    overlay, overlay_fps = decoded(tmp_path / "out" / "clip_overlay.mp4")
    assert (len(overlay), overlay_fps) == (len(frames), fps) == (5, 12.0)
    assert overlay[0].shape == frames[0].shape == (70, 96, 3)
    ids = sorted((tmp_path / "out" / "clip_ids").iterdir())
    assert [path.name for path in ids] == [f"{i:06d}.png" for i in range(5)]
    Image.fromarray(frames[2]).save(tmp_path / "frame.png")
    run_tutorial("--predict", tmp_path / "frame.png", *model, "--output-dir", tmp_path)
    expected = np.asarray(Image.open(tmp_path / "frame_ids.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(ids[2])), expected)


@pytest.mark.parametrize("fourcc, name", [("MJPG", "one.avi"), ("mp4v", "one.mp4")])
def test_a_clip_of_one_frame_gives_its_frame(tmp_path, fourcc, name):
    clip = write_clip(tmp_path / name, count=1, fourcc=fourcc)
    inputs = cli.claim_predictions([clip], tmp_path / "out")
    for frames, add in video.read_clips(inputs, CIHP):
        found = list(frames)
        add(found[0], np.zeros(found[0].shape[:2], np.uint8))
    np.testing.assert_array_equal(found, decoded(clip)[0])
    assert len(list((tmp_path / "out" / "one_ids").iterdir())) == 1


def test_mask_classes_with_a_video_say_that_the_video_gets_no_masks(tmp_path, capsys):
    clip = write_clip(tmp_path / "walk.avi", count=1)
    kinds = cli.prediction_kinds({"Face": [13]})
    cli.claim_predictions([clip], tmp_path / "out", kinds)
    assert "a video gets its overlay video and ids alone" in capsys.readouterr().err


class Brightness:
    """A stand-in model: class 1 where a pixel is brighter than mid-grey."""

    input_shape = (None, 16, 16, 3)

    def predict_on_batch(self, images):
        bright = images.mean(axis=-1, keepdims=True) / 128 - 1
        return np.concatenate([np.zeros_like(bright), bright * 4], axis=-1)


def flicker(found):
    """The share of pixels whose class changes between consecutive frames, given
    the (frame, ids) pairs of predict_video."""
    ids = [ids for _, ids in found]
    return np.mean([(a != b).mean() for a, b in zip(ids, ids[1:])])


def test_smoothing_lowers_the_flicker_of_a_still_noisy_clip():
    noise = np.random.default_rng(0).normal(0, 30, (12, 32, 32, 3))
    frames = list((128 + noise).clip(0, 255).astype(np.uint8))
    found = [tutorial.predict_video([Brightness()], frames, s) for s in [0.0, 0.5, 0.9]]
    flickers = [flicker(pairs) for pairs in found]
    assert flickers[0] > flickers[1] > flickers[2]


def test_an_unreadable_video_is_one_warning_and_the_photos_go_on(
    tiny_run, tmp_path, capsys
):
    (tmp_path / "broken.mp4").write_text("not a video")
    write_clip(tmp_path / "line.avi", size=(1, 70))  # no overlay video could hold it
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (90, 60, 30)).save(photo)
    argv = ["--predict", tmp_path / "broken.mp4", tmp_path / "line.avi", photo]
    argv += ["--output-dir", tmp_path]
    run_tutorial(*argv, "--model", tiny_run / "model.keras")
    out = capsys.readouterr().err
    assert f"warning: skipped: video {tmp_path / 'broken.mp4'} cannot be read" in out
    assert f"warning: skipped: video {tmp_path / 'line.avi'} is 1x70 pixels" in out
    assert (tmp_path / "photo_ids.png").is_file()
    assert not any(Path(tmp_path).glob("broken_*")) and not any(tmp_path.glob("line_*"))


@pytest.mark.parametrize("value", ["1", "-0.1", "nan"])
def test_temporal_smoothing_outside_0_to_1_is_refused(capsys, value):
    fails_with(capsys, ["--predict", "x.mp4", "--temporal-smoothing", value], value)


def test_temporal_smoothing_without_predict_is_refused(capsys, tmp_path):
    argv = ["--temporal-smoothing", "0.5", "--output-dir", tmp_path / "out"]
    fails_with(capsys, argv, "--temporal-smoothing steadies --predict on a video")
    assert not (tmp_path / "out").exists()


def test_a_folder_gives_predict_its_videos_as_well_as_its_photos(tmp_path):
    (tmp_path / "in").mkdir()
    write_clip(tmp_path / "in" / "clip.avi")
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "photo.png")
    inputs = cli.claim_predictions([tmp_path / "in"], tmp_path / "out")
    assert [path.name for path, _ in inputs] == ["clip.avi", "photo.png"]


def test_the_flicker_is_the_mean_share_of_pixels_that_change_between_frames(
    tmp_path, capsys
):
    still = SimpleNamespace(get=lambda prop: 0.0)  # a capture that says no fps
    (tmp_path / "ids").mkdir()
    clip = video.ClipWriter(tmp_path / "o.mp4", tmp_path / "ids", still, (8, 8), CIHP)
    for ids in [0, 1, 1, 0, 0]:  # every pixel changes, none, all, none: half
        clip.add(np.zeros((8, 8, 3), np.uint8), np.full((8, 8), ids, np.uint8))
    clip.writer.release()
    clip.report("clip")
    assert "flicker 50.00%" in capsys.readouterr().out
