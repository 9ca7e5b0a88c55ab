"""A data set is checked before any work: what is missing, unreadable or
mislabelled is named in one `error:` line, and what can be read is read right."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
from conftest import (
    ROOT,
    TINY,
    fails_with,
    png_header,
    run_args,
    run_python,
    split,
)
from deeplab_support import UserError, files
from deeplab_support.classes import CIHP


def exif_rotated_pair(root, mask_size):
    """A 48x32 camera JPEG with EXIF rotation 6 (upright: 32x48), and a mask."""
    exif = Image.Exif()
    exif[files.EXIF_ORIENTATION] = 6
    Image.new("RGB", (48, 32), "white").save(root / "p.jpg", exif=exif)
    Image.new("L", mask_size, 3).save(root / "p.png")
    return root / "p.jpg", root / "p.png"


def pipeline_ids(path):
    """The class ids the tf.data pipeline reads from a checked mask path."""
    return np.unique(np.asarray(dl.read_image(path, 64, mask=True)))


def nth_pair(root, n):
    """The n-th sorted (image, mask) pair of a CIHP folder."""
    images = sorted((root / "Training" / "Images").glob("*.jpg"))
    return images[n], root / "Training" / "Category_ids" / f"{images[n].stem}.png"


NUM_CLASSES = CIHP.num_classes


def nth_file(root, folder, n, pattern):
    """The n-th sorted file of a CIHP sub-folder."""
    return sorted((root / "Training" / folder).glob(pattern))[n]


def test_missing_data_folder(capsys, tmp_path):
    fails_with(
        capsys, run_args(tmp_path / "nowhere", tmp_path / "out"), "does not exist"
    )


def test_a_file_given_as_the_data_folder_is_named_as_not_a_folder(capsys, tmp_path):
    (tmp_path / "data.zip").write_bytes(b"PK")
    argv = run_args(tmp_path / "data.zip", tmp_path / "out")
    fails_with(capsys, argv, "data.zip is not a folder")


def test_empty_image_folder(capsys, tmp_path):
    (tmp_path / "cihp" / "Training" / "Images").mkdir(parents=True)
    fails_with(capsys, run_args(tmp_path / "cihp", tmp_path / "out"), "no .jpg or .png")


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
    monkeypatch.setattr(files, "CIHP_URL", "http://127.0.0.1:9/cihp.zip")
    argv = ["--download", "--data-dir", str(tmp_path / "cihp")]
    argv += ["--output-dir", str(tmp_path / "out"), *TINY]
    fails_with(capsys, argv, "could not download CIHP", "--data-dir")


def test_truncated_jpeg_is_reported_before_training(capsys, cihp_copy, tmp_path):
    image = nth_file(cihp_copy, "Images", 5, "*.jpg")
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(image))
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_non_image_with_an_image_extension(capsys, cihp_copy, tmp_path):
    image = nth_file(cihp_copy, "Images", 10, "*.jpg")
    image.write_text("this is not a picture")
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(image))


def test_corrupt_mask(capsys, cihp_copy, tmp_path):
    mask = nth_file(cihp_copy, "Category_ids", 2, "*.png")
    mask.write_bytes(mask.read_bytes()[:100])
    fails_with(capsys, run_args(cihp_copy, tmp_path / "out"), str(mask))


def test_mask_ids_outside_the_classes_are_listed(capsys, cihp_copy, tmp_path):
    mask = nth_file(cihp_copy, "Category_ids", 3, "*.png")
    pixels = np.asarray(Image.open(mask)).copy()
    pixels[0, :3] = [25, 200, 25]
    Image.fromarray(pixels).save(mask)
    fails_with(
        capsys,
        run_args(cihp_copy, tmp_path / "out"),
        str(mask),
        "id 25 on 2 pixels, id 200 on 1 pixel",
        "void label 255",
    )


def test_a_mask_is_read_at_its_images_size_by_nearest_neighbour(tmp_path):
    blocks = np.kron(np.array([[0, 5], [13, 0]], np.uint8), np.ones((4, 4), np.uint8))
    Image.fromarray(blocks).save(tmp_path / "m.png")
    mask = files.read_mask(tmp_path / "m.png", (16, 12), CIHP)
    assert mask.shape == (16, 12) and set(np.unique(mask)) == {0, 5, 13}
    resized = dl.read_image(str(tmp_path / "m.png"), 32, mask=True)
    assert np.asarray(resized).shape == (32, 32, 1)


@pytest.mark.parametrize("kind", ["16-bit", "palette"])
def test_16_bit_and_palette_masks_keep_their_ids(tmp_path, kind):
    ids = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % NUM_CLASSES
    if kind == "16-bit":
        mask = Image.fromarray(ids.astype(np.uint16) + 0)  # mode I;16
    else:
        mask = Image.fromarray(ids.astype(np.uint8), "P")
        mask.putpalette(np.array(CIHP.colors).ravel().tolist())
    mask.save(tmp_path / "m.png")
    checked = files.check_mask(tmp_path / "m.png", CIHP)
    assert np.asarray(Image.open(checked)).tolist() == ids.tolist()
    assert pipeline_ids(checked).tolist() == list(range(NUM_CLASSES))


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
    out = capsys.readouterr().out.strip()
    assert out.startswith("warning: 2 mask(s)") and "\n" not in out


def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    huge = png_header(tmp_path / "huge.png", 13_500, 13_500)
    message = "huge.png has more than 89 megapixels"
    with pytest.raises(UserError, match=message) as error:
        files.check_image(huge)
    assert str(huge) in str(error.value) and "downscale" in str(error.value)


def test_jpeg_saved_as_a_mask_png_gets_a_warning(tmp_path, capsys):
    ids = np.zeros((16, 16), np.uint8)
    ids[4:12, 4:12] = 13
    Image.fromarray(ids).save(tmp_path / "m.png", format="JPEG")
    checked = files.check_mask(tmp_path / "m.png", CIHP)
    out = capsys.readouterr().out.strip()
    assert out.startswith("warning: mask") and "JPEG" in out and "\n" not in out
    assert Image.open(checked).format == "PNG"  # what tf.data decodes as a mask


@pytest.mark.slow
def test_a_tiff_named_jpg_stops_training_with_exactly_one_line_on_stderr(
    cihp_copy, tmp_path
):
    image, _ = nth_pair(cihp_copy, 1)
    Image.open(image).save(image, format="TIFF")
    argv = run_args(cihp_copy, tmp_path / "out")
    result = run_python(ROOT / "deeplabv3_plus.py", *argv, exit_code=2)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert str(image) in result.stderr and "TIFF" in result.stderr
    assert not Path(tmp_path / "out").exists()
