"""A data set is checked before any work: what is missing, unreadable or
mislabelled is named in one `error:` line, and what can be read is read right."""

import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, fails_with, nth_file, png_header, run_args, run_python
from conftest import split
from deeplab_support import UserError, datasets, files
from deeplab_support.classes import CIHP


def exif_rotated_pair(root, mask_size):
    """A 48x32 camera JPEG with EXIF rotation 6 (upright: 32x48), and a mask."""
    exif = Image.Exif()
    exif[files.EXIF_ORIENTATION] = 6
    Image.new("RGB", (48, 32), "white").save(root / "p.jpg", exif=exif)
    Image.new("L", mask_size, 3).save(root / "p.png")
    return root / "p.jpg", root / "p.png"


@pytest.mark.parametrize(
    "name, phrases",
    [
        ("nowhere", ["nowhere does not exist", "--data-dir"]),
        ("data.zip", ["data.zip is not a folder", "--data-dir"]),
        ("cihp", ["no .jpg or .png"]),  # its Training/Images is empty
    ],
)
def test_a_missing_file_or_empty_data_dir_is_named(capsys, tmp_path, name, phrases):
    (tmp_path / "data.zip").write_bytes(b"PK")
    (tmp_path / "cihp" / "Training" / "Images").mkdir(parents=True)
    fails_with(capsys, run_args(tmp_path / name, tmp_path / "out"), *phrases)


def test_images_without_masks_are_named_and_counted(capsys, cihp_copy, tmp_path):
    masks = sorted((cihp_copy / "Training" / "Category_ids").glob("*.png"))
    for mask in masks[:2]:
        mask.unlink()
    err = fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), "2 of 16")
    assert masks[0].stem in err and masks[1].stem in err


def test_fewer_images_than_asked_for(capsys, toy_root, tmp_path):
    argv = run_args(toy_root, tmp_path / "out", "--num-train-images", "40")
    fails_with(capsys, argv, "has 16 training images", "--num-train-images")


def test_download_without_network_says_what_to_do(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "CIHP_URL", "http://127.0.0.1:9/cihp.zip")
    argv = ["--download", *run_args(tmp_path / "cihp", tmp_path / "out")]
    fails_with(capsys, argv, "could not download CIHP", "network", "--data-dir")
    assert not (tmp_path / "cihp").exists()  # an empty one would hide the toy set


BROKEN = [("Images", 5, "cut short"), ("Images", 10, "text")]
BROKEN += [("Category_ids", 2, "cut short")]


@pytest.mark.parametrize("folder, n, damage", BROKEN)
def test_a_broken_image_or_mask_is_named_before_training(
    capsys, cihp_copy, tmp_path, folder, n, damage
):
    path = nth_file(cihp_copy, folder, n)
    if damage == "text":
        path.write_text("this is not a picture")
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(path))
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_masks_of_void_alone_are_refused_before_any_work(cihp_copy):
    train, _ = split(cihp_copy, 4)
    files.check_pairs(train, CIHP)  # as generated: labelled
    for _, mask in train:  # nothing to learn from, or to score
        Image.new("L", Image.open(mask).size, 255).save(mask)
    with pytest.raises(
        UserError, match="4 masks from .* hold the void label 255 alone"
    ):
        files.check_pairs(train, CIHP)


def test_mask_ids_outside_the_classes_are_listed(capsys, cihp_copy, tmp_path):
    mask = nth_file(cihp_copy, "Category_ids", 3)
    pixels = np.asarray(Image.open(mask)).copy()
    pixels[0, :3] = [25, 200, 25]
    Image.fromarray(pixels).save(mask)
    argv = run_args(cihp_copy, tmp_path / "out")
    phrases = "id 25 on 2 pixels, id 200 on 1 pixel", "void label 255"
    fails_with(capsys, argv, str(mask), *phrases)


def test_a_mask_is_read_at_its_images_size_by_nearest_neighbour(tmp_path):
    blocks = np.kron(np.array([[0, 5], [13, 0]], np.uint8), np.ones((4, 4), np.uint8))
    Image.fromarray(blocks).save(tmp_path / "m.png")
    mask = files.read_mask(tmp_path / "m.png", (16, 12), CIHP)
    assert mask.shape == (16, 12) and set(np.unique(mask)) == {0, 5, 13}


def test_checking_many_pairs_shows_a_count(toy_root, capsys, monkeypatch):
    monkeypatch.setattr(files, "COUNT_CHECKS_FROM", 4)
    files.check_pairs(split(toy_root, 3)[0], CIHP)
    assert "checked pair" not in capsys.readouterr().out  # few: no count
    files.check_pairs(split(toy_root, 4)[0], CIHP)
    assert "4/4 checked pairs" in capsys.readouterr().out


def test_mask_in_the_cameras_raw_orientation_names_both_files(tmp_path):
    image, mask = exif_rotated_pair(tmp_path, (48, 32))
    with pytest.raises(UserError, match="transposed") as error:
        files.check_pairs([(image, mask)], CIHP)
    assert str(image) in str(error.value) and str(mask) in str(error.value)


def test_uniformly_scaled_mask_is_resized_with_one_line(tmp_path, capsys):
    image, mask = exif_rotated_pair(tmp_path, (16, 24))  # upright, half size
    files.check_pairs([(image, mask), (image, mask)], CIHP)
    out = capsys.readouterr().err.strip()
    assert out.startswith("warning: 2 mask(s)") and "\n" not in out


@pytest.mark.parametrize("side", [10_000, 13_500])  # Pillow warns; Pillow refuses
def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, side):
    huge = png_header(tmp_path / "huge.png", side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's warning must not get out
        with pytest.raises(UserError, match="has more than 89 megapixels") as error:
            files.check_image(huge)
    assert str(huge) in str(error.value) and "downscale" in str(error.value)


def test_jpeg_saved_as_a_mask_png_gets_a_warning(tmp_path, capsys):
    ids = np.zeros((16, 16), np.uint8)
    ids[4:12, 4:12] = 13
    Image.fromarray(ids).save(tmp_path / "m.png", format="JPEG")
    checked, _ = files.check_mask(tmp_path / "m.png", CIHP)
    out = capsys.readouterr().err.strip()
    assert out.startswith("warning: mask") and "JPEG" in out and "\n" not in out
    assert Image.open(checked).format == "PNG"  # what tf.data decodes as a mask


@pytest.mark.slow
def test_a_tiff_named_jpg_stops_training_with_one_stderr_line(cihp_copy, tmp_path):
    image = nth_file(cihp_copy, "Images", 1)
    Image.open(image).save(image, format="TIFF")
    argv = run_args(cihp_copy, tmp_path / "out")
    result = run_python(ROOT / "deeplabv3_plus.py", *argv, exit_code=2)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert str(image) in result.stderr and "TIFF" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written
