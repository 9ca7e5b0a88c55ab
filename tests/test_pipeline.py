"""The tf.data pipeline: decoding, resizing, pairing, augmenting and batching."""

import os
import shutil
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from tensorflow import image as tf_image
from tensorflow import io as tf_io

import deeplabv3_plus as dl
from conftest import split
from deeplab_support import datasets, files
from deeplab_support.classes import CIHP


def mask_ids(path):
    """The set of class ids stored in a mask file."""
    return set(np.unique(np.asarray(Image.open(path))).tolist())


def checked_pairs(root, num_train, num_val):
    """Training and validation pairs as the tutorial gets them: listed, checked."""
    train, val = split(root, num_train, num_val)
    return files.check_pairs(train, CIHP), files.check_pairs(val, CIHP)


def test_masks_keep_only_their_own_ids_after_resizing(toy_root):
    train, val = checked_pairs(toy_root, 12, 4)
    for _, mask_path in train + val:
        resized = np.asarray(dl.read_image(mask_path, 48, mask=True))
        assert resized.dtype == np.uint8 and resized.shape == (48, 48, 1)
        assert set(np.unique(resized).tolist()) <= mask_ids(mask_path)


def test_images_are_resized_to_square_rgb_uint8(toy_root):
    (image_path, _), *_ = checked_pairs(toy_root, 4, 0)[0]
    image = np.asarray(dl.read_image(image_path, 64))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_grey_rgba_and_16_bit_pngs_decode_to_rgb(tmp_path, mode):
    pixels = np.tile(np.arange(0, 200, 25, dtype=np.uint8), (8, 1))
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([pixels] * 3 + [np.full_like(pixels, 90)]))
    else:
        image = Image.fromarray(pixels)
    image.save(tmp_path / "image.png")
    decoded = np.asarray(dl.read_image(files.check_image(tmp_path / "image.png"), 8))
    assert decoded.shape == (8, 8, 3)
    np.testing.assert_allclose(decoded, np.dstack([pixels] * 3), atol=1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_rotated_jpegs_reach_the_pipeline_upright(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    pixels = cv2.resize(rng.integers(0, 255, (3, 4, 3), dtype=np.uint8), (32, 24))
    exif = Image.Exif()
    exif[files.EXIF_ORIENTATION] = orientation
    path = tmp_path / "photo.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=100)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    checked = files.check_image(path)
    # The pipeline's decoder ignores EXIF; the checked file needs no rotation.
    decoded = tf_image.decode_image(tf_io.read_file(checked), channels=3)
    decoded = np.asarray(decoded)
    assert decoded.shape == expected.shape
    assert np.abs(decoded.astype(int) - expected).mean() < 10  # JPEG decoders differ


def test_images_pair_with_masks_by_stem_not_position(tmp_path, toy_root):
    root = tmp_path / "cihp"
    (root / "Training" / "Images").mkdir(parents=True)
    (root / "Training" / "Category_ids").mkdir()
    sources = sorted((toy_root / "Training" / "Images").glob("*.jpg"))[:3]
    for source in sources:
        target = root / "Training" / "Images" / source.name
        target.write_bytes(source.read_bytes())
        mask = toy_root / "Training" / "Category_ids" / f"{source.stem}.png"
        (root / "Training" / "Category_ids" / mask.name).write_bytes(mask.read_bytes())
    extra = root / "Training" / "Category_ids" / "0000000_extra.png"
    extra.write_bytes(mask.read_bytes())  # sorts between the real masks
    train, val = split(root, 2, 1)
    for image_path, mask_path in train + val:
        assert Image.open(image_path).size == Image.open(mask_path).size
        assert image_path.stem == mask_path.stem


def test_training_batches_have_fixed_shapes_and_types(toy_root):
    train, _ = checked_pairs(toy_root, 10, 0)
    dataset = dl.data_generator(train, 64, 4, CIHP, training=True, augmented=True)
    batches = [(np.asarray(x), np.asarray(y)) for x, y, _ in dataset]
    assert len(batches) == 2  # 10 images, batch 4: the remainder is dropped
    for images, masks in batches:
        assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
        assert masks.shape == (4, 64, 64, 1) and masks.dtype == np.uint8
        assert masks.min() >= 0 and masks.max() < 20


def test_validation_batches_keep_every_image_in_order(toy_root):
    _, val = checked_pairs(toy_root, 6, 6)
    dataset = dl.data_generator(val, 64, 4, CIHP, training=False)
    images = np.concatenate([np.asarray(x) for x, _, _ in dataset])
    assert len(images) == 6
    np.testing.assert_array_equal(images[0], dl.read_image(val[0][0], 64))


def test_the_official_zips_nested_root_is_found(toy_root, tmp_path):
    nested = tmp_path / "instance-level_human_parsing" / "instance-level_human_parsing"
    shutil.copytree(toy_root / "Training", nested / "Training")
    assert datasets.find(tmp_path).root == nested
    assert datasets.find(nested.parent).root == nested
    assert datasets.find(nested).root == nested


def test_download_extracts_the_official_nested_layout(toy_root, tmp_path, monkeypatch):
    archive = tmp_path / "cihp.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in toy_root.rglob("*"):
            name = "instance-level_human_parsing/instance-level_human_parsing/"
            zipped.write(path, name + str(path.relative_to(toy_root)))
    monkeypatch.setattr(files, "CIHP_URL", archive.as_uri())
    files.download_cihp(tmp_path / "data")
    root = datasets.find(tmp_path / "data").root
    assert root.name == "instance-level_human_parsing"
    train, val = split(root, 12, 4)
    assert len(train) == 12 and len(val) == 4
    # Only what was extracted, the zip and the record of it: no staging folder.
    left = sorted(path.name for path in (tmp_path / "data").iterdir())
    zip_name, extracted = "instance-level-human-parsing.zip", root.parent.name
    assert left == sorted([files.DOWNLOAD_MARKER, zip_name, extracted])


def nth_pair(root, n):
    """The n-th sorted (image, mask) pair of a CIHP folder."""
    images = sorted((root / "Training" / "Images").glob("*.jpg"))
    return images[n], root / "Training" / "Category_ids" / f"{images[n].stem}.png"


def test_non_utf8_file_names_go_through_the_pipeline(cihp_copy):
    image, mask = nth_pair(cihp_copy, 0)
    stem = os.fsdecode(os.fsencode(image.stem) + b"\xff")
    os.rename(image, image.with_name(stem + ".jpg"))
    os.rename(mask, mask.with_name(stem + ".png"))
    train, _ = split(cihp_copy, 16, 0)
    assert any(not files.is_utf8(p) for pair in train for p in pair)
    checked = files.check_pairs(train, CIHP)
    batches = dl.data_generator(checked, 64, 16, CIHP, cache=False)
    images, masks, _ = next(iter(batches))
    assert images.shape == (16, 64, 64, 3) and int(np.max(masks)) < CIHP.num_classes


def test_mirroring_swaps_left_and_right_classes():
    mask = np.array([[[14], [15], [16], [17], [18], [19], [13], [0]]], dtype=np.uint8)
    image = np.zeros((1, 8, 3), dtype=np.uint8)
    _, mirrored = dl.mirror(image, mask, CIHP.flip)
    mirrored = np.asarray(mirrored)[0, :, 0].tolist()
    assert mirrored == [0, 13, 18, 19, 16, 17, 14, 15]


def test_augmentation_keeps_masks_integer_and_ids_known(toy_root):
    train, _ = split(toy_root, 1, 0)
    (image_path, mask_path), *_ = files.check_pairs(train, CIHP)
    image, mask = dl.load_data(image_path, mask_path, 64)
    source_ids = set(np.unique(mask).tolist())
    allowed = source_ids | {CIHP.flip[i] for i in source_ids}
    for n in range(10):
        new_image, new_mask = dl.augment(image, mask, 64, CIHP.flip, [n, 0])
        assert new_mask.dtype == "uint8" and new_mask.shape == (64, 64, 1)
        assert new_image.dtype == "uint8" and new_image.shape == (64, 64, 3)
        assert set(np.unique(new_mask).tolist()) <= allowed
