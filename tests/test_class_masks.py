"""--mask-classes and --cutout: the masks and cut-outs of chosen classes."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import demo
from conftest import fails_with, run_args, run_tutorial
from deeplab_support import UserError, cli
from deeplab_support.classes import CIHP, ClassTable


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A synthetic photo of a person, as the demo offers it."""
    return demo.write_examples(tmp_path_factory.mktemp("photos"))[0]


def predict(photo, model, output_dir, *flags):
    """Run --predict on one photo with these flags."""
    argv = ["--predict", photo, "--model", model, "--output-dir", output_dir]
    run_tutorial(*argv, *flags)


def test_each_mask_and_cutout_is_the_ids_png_of_its_classes(tiny_run, photo, tmp_path):
    halves = [",".join(CIHP.names[:10]), ",".join(CIHP.names[10:])]  # every pixel
    flags = [f for group in halves for f in ("--mask-classes", group)]
    image = np.asarray(Image.open(photo).convert("RGBA")).copy()
    image[:, image.shape[1] // 2 :, 3] = 0  # a photo with a transparent right half
    Image.fromarray(image).save(see_through := tmp_path / "person_3.png")
    predict(see_through, tiny_run / "model.keras", tmp_path, *flags, "--cutout")
    ids = np.asarray(Image.open(tmp_path / "person_3_ids.png"))
    for name, group in cli.mask_groups(halves, CIHP).items():
        mask = np.asarray(Image.open(tmp_path / f"person_3_class-{name}.png"))
        np.testing.assert_array_equal(mask, 255 * np.isin(ids, group))
        cutout = np.asarray(Image.open(tmp_path / f"person_3_cutout-{name}.png"))
        np.testing.assert_array_equal(cutout[..., :3], image[..., :3])
        np.testing.assert_array_equal(cutout[..., 3], np.minimum(mask, image[..., 3]))


def test_a_users_file_at_a_mask_name_is_kept(tiny_run, photo, tmp_path):
    (tmp_path / "person_3_class-Face.png").write_text("mine")
    predict(photo, tiny_run / "model.keras", tmp_path, "--mask-classes", "Face")
    assert (tmp_path / "person_3_class-Face.png").read_text() == "mine"
    assert (tmp_path / "person_3-2_class-Face.png").is_file()


def test_an_unknown_class_is_one_error_naming_the_valid_ones(capsys, tiny_run, photo):
    argv = ["--predict", photo, "--model", tiny_run / "model.keras"]
    argv += ["--mask-classes", "Face,Cape"]
    fails_with(capsys, argv, "'Cape', which the model does not predict", "Left-arm")


def test_two_groups_of_one_file_name_are_one_error():
    classes = ClassTable(["a/b", "a_b", "c"], [(0, 0, 0), (1, 1, 1), (2, 2, 2)])
    assert cli.mask_groups(["a/b", "a/b"], classes) == {"a_b": [0]}  # twice: once
    with pytest.raises(UserError, match="both be written to \\*_class-a_b.png"):
        cli.mask_groups(["a/b", "a_b"], classes)


@pytest.mark.parametrize("flags", [["--mask-classes", "Face"], ["--cutout"]])
def test_mask_flags_in_training_are_refused(capsys, toy_root, tmp_path, flags):
    phrase = f"{flags[0]} shapes what --predict writes"
    fails_with(capsys, run_args(toy_root, tmp_path, *flags), phrase)


def test_a_cutout_without_classes_is_refused(capsys, photo):
    fails_with(capsys, ["--predict", photo, "--cutout"], "add --mask-classes")


def test_the_demo_offers_the_mask_of_the_chosen_classes(tiny_run, photo, tmp_path):
    segmenter = demo.Segmenter(tiny_run / "model.keras")
    *_, download = segmenter(photo, ["Hair", "Face"])
    predict(photo, tiny_run / "model.keras", tmp_path, "--mask-classes", "Hair,Face")
    written = np.asarray(Image.open(tmp_path / "person_3_class-Hair+Face.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(download)), written)
    assert segmenter(photo)[-1] is None  # nothing chosen, nothing to download
    long = shutil.copy(photo, tmp_path / ("p" * 200 + ".png"))  # with a long group
    assert Path(segmenter(long, segmenter.classes.names)[-1]).is_file()
