"""The tf.data pipeline: decoding, resizing, pairing, augmenting and batching, and
the CIHP download that feeds it."""

import os
import shutil
import zipfile

import filelock
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import deeplabv3_plus as dl
from conftest import nth_file, split
from deeplab_support import UserError, datasets, files, runs
from deeplab_support.classes import CIHP, VOC, VOID

SIDE = 16  # the test images' size, and the pipeline's: read_image does not resize
RAMP = (np.add.outer(np.arange(SIDE), np.arange(SIDE)) * 8).astype(np.uint8)
RGB = np.dstack([RAMP, RAMP[::-1], RAMP.T])
NESTED = "instance-level_human_parsing/instance-level_human_parsing"  # in CIHP's zip


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


def write_photo(folder, kind):
    """Save a 16x16 photo of this kind; return its path and the RGB it shows."""
    path = folder / ("photo.jpg" if kind.startswith("JPEG") else "photo.png")
    shows = RGB if kind in ("RGB", "RGBA") else np.dstack([RAMP] * 3)
    if kind.startswith("JPEG"):  # "JPEG rotated": the camera was held sideways
        exif = Image.Exif()
        exif[files.EXIF_ORIENTATION] = 6 if kind == "JPEG rotated" else 1
        Image.fromarray(RGB).save(path, exif=exif, quality=100)
        shows = np.rot90(RGB, -1) if kind == "JPEG rotated" else RGB
    elif kind == "P":  # with a transparent colour, as many palette PNGs have
        palette = RGB[:2].reshape(-1, 3)
        image = Image.fromarray(RAMP // 8, "P")
        image.putpalette(palette.ravel().tolist())
        image.save(path, transparency=0)
        shows = palette[RAMP // 8]
    elif kind == "I;16":  # 16-bit grey: both read its high byte
        Image.fromarray((RAMP.astype(np.uint16) << 8) + 0x7F).save(path)
    else:
        channels = {"RGB": RGB, "RGBA": np.dstack([RGB, RAMP]), "L": RAMP}
        Image.fromarray(channels[kind]).save(path)
    return path, shows.astype(int)


@pytest.mark.parametrize(
    "kind", ["JPEG", "JPEG rotated", "RGB", "RGBA", "L", "P", "I;16"]
)
def test_training_and_prediction_read_every_photo_format_alike(tmp_path, kind):
    path, shows = write_photo(tmp_path, kind)
    trained_on = np.asarray(dl.read_image(files.check_image(path), SIDE), int)
    predicted_on = files.read_photo(path).astype(int)
    np.testing.assert_array_equal(trained_on, predicted_on)
    lossy = 4 if kind.startswith("JPEG") else 0
    assert np.abs(predicted_on - shows).max() <= lossy


@pytest.mark.parametrize("kind", ["L", "LA", "P", "I;16", "RGB", "1"])
def test_training_and_evaluation_read_every_mask_format_alike(tmp_path, kind):
    ids = RAMP % CIHP.num_classes
    ids[0, :3] = CIHP.void
    if kind == "P":
        mask = Image.fromarray(ids, "P")
        mask.putpalette(CIHP.palette().ravel().tolist())
    elif kind == "1":  # two-level: black and white are ids 0 and 1
        ids = RAMP // 8 % 2
        mask = Image.fromarray(ids * 255).convert("1")
    else:  # LA: grey ids under an alpha channel
        pixels = {"L": ids, "LA": np.dstack([ids, RAMP]), "I;16": ids.astype(np.uint16)}
        pixels["RGB"] = CIHP.palette()[ids]
        mask = Image.fromarray(pixels[kind])
    mask.save(tmp_path / "mask.png")
    checked, _ = files.check_mask(tmp_path / "mask.png", CIHP)
    trained_on = np.asarray(dl.read_image(checked, SIDE, mask=True))[..., 0]
    evaluated_on = files.read_mask(tmp_path / "mask.png", (SIDE, SIDE), CIHP)
    assert trained_on.tolist() == evaluated_on.tolist() == ids.tolist()


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
    dataset = dl.data_generator(train, 64, 4, CIHP, epoch=0, augmented=True)
    batches = [(np.asarray(x), np.asarray(y)) for x, y, _ in dataset]
    assert len(batches) == dataset.cardinality() == 2  # the remainder is dropped
    for images, masks in batches:
        assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
        assert masks.shape == (4, 64, 64, 1) and masks.dtype == np.uint8
        assert masks.max() < 20


@pytest.mark.parametrize("cache", [True, False])
def test_each_epoch_is_shuffled_and_augmented_from_the_seed_and_its_number(
    toy_root, cache
):
    train, _ = checked_pairs(toy_root, 8, 0)
    epoch = tf.Variable(0, dtype="int64")  # as Keras sets it in training
    dataset = dl.data_generator(train, 64, 4, CIHP, epoch, True, cache, seed=42)

    def images(number, dataset=dataset):  # one epoch's batches
        epoch.assign(number)
        return np.stack([np.asarray(x) for x, _, _ in dataset])

    first, second = images(0), images(1)
    resumed = dl.data_generator(train, 64, 4, CIHP, 1, True, cache, seed=42)
    np.testing.assert_array_equal(images(1, resumed), second)  # as on --resume
    assert not np.array_equal(first, second)  # a new order every epoch
    plain = dl.data_generator(train, 64, 4, CIHP, epoch, False, cache, seed=42)
    assert not np.array_equal(images(0, plain), images(1, plain))  # unaugmented too
    other_seed = dl.data_generator(train, 64, 4, CIHP, epoch, True, cache, seed=7)
    assert not np.array_equal(images(0, other_seed), first)


def test_validation_batches_keep_every_image_in_order(toy_root):
    _, val = checked_pairs(toy_root, 6, 6)
    dataset = dl.data_generator(val, 64, 4, CIHP)
    images = np.concatenate([np.asarray(x) for x, _, _ in dataset])
    assert len(images) == 6 and dataset.cardinality() == 2  # Keras knows the count
    np.testing.assert_array_equal(images[0], dl.read_image(val[0][0], 64))


def test_the_official_zips_nested_root_is_found(toy_root, tmp_path):
    nested = tmp_path / NESTED
    shutil.copytree(toy_root / "Training", nested / "Training")
    assert datasets.find(tmp_path).root == nested
    assert datasets.find(nested.parent).root == nested
    assert datasets.find(nested).root == nested


def serve_cihp(monkeypatch, folder, root=None):
    """Serve a zip nested as the official one (root's files, else a readme) as CIHP."""
    archive, inside = folder / "served.zip", f"{NESTED}/"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in root.rglob("*") if root else []:
            zipped.write(path, inside + str(path.relative_to(root)))
        zipped.writestr(inside + "readme.txt", "CIHP " * 100)
    monkeypatch.setattr(datasets, "CIHP_URL", archive.as_uri())
    return archive


def test_download_extracts_the_official_nested_layout(toy_root, tmp_path, monkeypatch):
    serve_cihp(monkeypatch, tmp_path, toy_root)
    datasets.download_cihp(tmp_path / "data" / "cihp")
    root = datasets.find(tmp_path / "data" / "cihp").root
    assert root == tmp_path / "data" / "cihp" / NESTED
    train, val = split(root, 12, 4)
    assert len(train) == 12 and len(val) == 4
    # The zip stays beside the data folder, so the next --download reuses it.
    left = sorted(path.name for path in (tmp_path / "data").iterdir())
    assert left == sorted([datasets.CIHP_ZIP, "cihp", runs.RUN_FILE])
    assert runs.owned_names(tmp_path / "data") >= {datasets.CIHP_ZIP, "cihp"}


def test_its_folder_is_free_for_other_writers_once_downloaded(
    toy_root, tmp_path, monkeypatch
):
    serve_cihp(monkeypatch, tmp_path, toy_root)
    datasets.download_cihp(tmp_path / "data" / "cihp")
    other = filelock.FileLock(runs.lock_file(tmp_path / "data"), thread_local=False)
    other.acquire(timeout=0)  # as another process's claim would: the training's
    other.release()


def test_a_second_download_extracts_nothing(toy_root, tmp_path, monkeypatch):
    serve_cihp(monkeypatch, tmp_path, toy_root)
    data_dir = tmp_path / "data" / "cihp"
    datasets.download_cihp(data_dir)
    readme = data_dir / NESTED / "readme.txt"
    readme.write_text("read")
    datasets.download_cihp(data_dir)
    assert readme.read_text() == "read"


@pytest.mark.parametrize("folder", ["cihp", "instance-level-human-parsing_extracted"])
def test_a_download_never_extracts_over_a_users_folder(tmp_path, monkeypatch, folder):
    serve_cihp(monkeypatch, tmp_path)
    (tmp_path / "data" / folder).mkdir(parents=True)
    (tmp_path / "data" / folder / "mine.txt").write_text("mine")
    with pytest.raises(UserError, match=f"{folder} was not made by this project"):
        datasets.download_cihp(tmp_path / "data" / "cihp")  # says: move it away
    assert (tmp_path / "data" / folder / "mine.txt").read_text() == "mine"
    assert not (tmp_path / "data" / datasets.CIHP_ZIP).exists()  # nothing fetched


@pytest.mark.parametrize("damage", ["cut short", "garbled"])
def test_a_broken_zip_is_an_error_saying_to_delete_it(tmp_path, monkeypatch, damage):
    archive = serve_cihp(monkeypatch, tmp_path)
    data = archive.read_bytes()
    if damage == "cut short":  # a download that stopped halfway
        data = data[: len(data) // 2]
    else:  # whole, but the readme's compressed bytes are zeros
        readme = zipfile.ZipFile(archive).infolist()[0]
        size, start = readme.compress_size, 30 + len(readme.filename)  # after header
        data = data[:start] + bytes(size) + data[start + size :]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / datasets.CIHP_ZIP).write_bytes(data)
    with pytest.raises(UserError, match="not a complete zip archive.*delete it"):
        datasets.download_cihp(tmp_path / "data" / "cihp")
    left = sorted(os.listdir(tmp_path / "data"))
    assert left == sorted([datasets.CIHP_ZIP, runs.RUN_FILE])


def test_non_utf8_file_names_go_through_the_pipeline(cihp_copy):
    image, mask = (nth_file(cihp_copy, f, 0) for f in ["Images", "Category_ids"])
    stem = os.fsdecode(os.fsencode(image.stem) + b"\xff")
    os.rename(image, image.with_name(stem + ".jpg"))
    os.rename(mask, mask.with_name(stem + ".png"))
    train, _ = split(cihp_copy, 16, 0)
    assert any(not files.is_utf8(p) for pair in train for p in pair)
    checked = files.check_pairs(train, CIHP)
    batches = dl.data_generator(checked, 64, 16, CIHP, cache=False)
    images, masks, _ = next(iter(batches))
    assert images.shape == (16, 64, 64, 3) and int(np.max(masks)) < CIHP.num_classes


MIRRORED = [(CIHP, [14, 15, 16, 17, 18, 19, 13, 0], [0, 13, 18, 19, 16, 17, 14, 15])]
MIRRORED += [(VOC, [0, 15, 20, VOID], [VOID, 20, 15, 0])]  # no sided classes: no swaps


@pytest.mark.parametrize("classes, ids, mirrored", MIRRORED, ids=["CIHP", "VOC"])
def test_mirroring_swaps_left_and_right_classes_and_keeps_every_other_id(
    classes, ids, mirrored
):
    mask = np.array(ids, np.uint8)[None, :, None]
    _, found = dl.mirror(np.zeros((1, len(ids), 3), np.uint8), mask, classes.flip)
    assert np.asarray(found)[0, :, 0].tolist() == mirrored


def test_augmentation_keeps_masks_integer_and_ids_known(toy_root):
    train, _ = split(toy_root, 1, 0)
    (image_path, mask_path), *_ = files.check_pairs(train, CIHP)
    image, mask = dl.load_data(image_path, mask_path, 64, CIHP)
    source_ids = set(np.unique(mask).tolist())
    allowed = source_ids | {CIHP.flip[i] for i in source_ids}
    for n in range(10):
        new_image, new_mask = dl.augment(image, mask, 64, CIHP.flip, [n, 0])
        assert new_mask.dtype == "uint8" and new_mask.shape == (64, 64, 1)
        assert new_image.dtype == "uint8" and new_image.shape == (64, 64, 3)
        assert set(np.unique(new_mask).tolist()) <= allowed


def test_augmentation_zooms_and_crops_beyond_a_mirror(toy_root):
    train, _ = split(toy_root, 1, 0)
    (image_path, mask_path), *_ = files.check_pairs(train, CIHP)
    image, mask = dl.load_data(image_path, mask_path, 64, CIHP)
    as_is = [np.asarray(m) for m in [mask, dl.mirror(image, mask, CIHP.flip)[1]]]
    masks = (dl.augment(image, mask, 64, CIHP.flip, [n, 0])[1] for n in range(10))
    # A zoom and crop moves the people, as a mirror cannot.
    assert any(all((np.asarray(new) != same).any() for same in as_is) for new in masks)
