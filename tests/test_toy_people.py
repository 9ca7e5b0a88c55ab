"""Tests for the synthetic toy-people data set in the CIHP layout."""

import json
import os
import time
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import scipy.io

from data import make_toy_people as toy_people
from deeplab_support import datasets

SMALL = 12


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """A small generated data set shared by the read-only tests."""
    return toy_people.generate(tmp_path_factory.mktemp("toy") / "cihp", SMALL)


def _stems(directory, suffix):
    """Return the sorted file stems with a suffix in a directory."""
    return sorted(p.stem for p in directory.iterdir() if p.suffix == suffix)


def _read_masks(root):
    """Read every mask of a data set as a list of arrays."""
    directory = root / "Training" / "Category_ids"
    paths = sorted(directory.glob("*.png"))
    return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths]


def _file_bytes(root):
    """Map every file's path relative to root to its contents."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_class_names_and_palette_follow_cihp():
    assert len(toy_people.CLASS_NAMES) == 20
    assert toy_people.CLASS_NAMES[0] == "Background"
    assert toy_people.CLASS_NAMES[14:16] == ("Left-arm", "Right-arm")
    assert toy_people.CIHP_PALETTE.shape == (20, 3)
    assert toy_people.CIHP_PALETTE.dtype == np.uint8
    assert toy_people.CIHP_PALETTE[13].tolist() == [0, 0, 255]


def test_layout_is_exactly_cihp(small_set):
    top_level = sorted(p.name for p in small_set.iterdir())
    assert top_level == [
        "Training",
        "Validation",
        "human_colormap.mat",
        "toy_people.json",
    ]
    training = sorted(p.name for p in (small_set / "Training").iterdir())
    assert training == ["Category_ids", "Images"]
    images = _stems(small_set / "Training" / "Images", ".jpg")
    masks = _stems(small_set / "Training" / "Category_ids", ".png")
    assert images == masks == [f"{i:07d}" for i in range(SMALL)]


def test_validation_images_come_from_their_own_index_range(small_set):
    images = _stems(small_set / "Validation" / "Images", ".jpg")
    masks = _stems(small_set / "Validation" / "Category_ids", ".png")
    first = toy_people.VAL_OFFSET
    assert images == masks == [f"{i:07d}" for i in range(first, first + 50)]


def test_colormap_mat_holds_the_palette_in_unit_range(small_set):
    colormap = scipy.io.loadmat(small_set / "human_colormap.mat")["colormap"]
    assert colormap.shape == (20, 3)
    assert colormap.dtype == np.float64
    assert colormap.min() >= 0 and colormap.max() <= 1
    np.testing.assert_array_equal(colormap, toy_people.CIHP_PALETTE / 255.0)


def test_masks_are_8bit_single_channel_class_ids_sized_like_images(small_set):
    for stem in _stems(small_set / "Training" / "Images", ".jpg"):
        image = cv2.imread(str(small_set / "Training" / "Images" / f"{stem}.jpg"))
        mask_path = small_set / "Training" / "Category_ids" / f"{stem}.png"
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and mask.ndim == 2
        assert mask.max() <= 19
        assert image.ndim == 3 and image.shape[2] == 3
        assert mask.shape == image.shape[:2]


def test_image_sizes_vary_within_range_and_are_not_all_square(small_set):
    shapes = {mask.shape for mask in _read_masks(small_set)}
    assert len(shapes) > 1
    assert any(height != width for height, width in shapes)
    assert all(96 <= size <= 160 for shape in shapes for size in shape)


def test_same_seed_gives_identical_bytes(tmp_path):
    first = toy_people.generate(tmp_path / "a", 4, seed=3)
    second = toy_people.generate(tmp_path / "b", 4, seed=3)
    assert _file_bytes(first) == _file_bytes(second)


def test_different_seed_gives_different_images(tmp_path):
    first = _file_bytes(toy_people.generate(tmp_path / "a", 4, seed=3))
    second = _file_bytes(toy_people.generate(tmp_path / "b", 4, seed=4))
    assert first["Training/Images/0000000.jpg"] != second["Training/Images/0000000.jpg"]


def test_sample_does_not_depend_on_num_images(tmp_path):
    short = _file_bytes(toy_people.generate(tmp_path / "a", 2))
    long = _file_bytes(toy_people.generate(tmp_path / "b", 5))
    assert short["Training/Images/0000001.jpg"] == long["Training/Images/0000001.jpg"]


def test_left_arm_is_on_the_image_right(small_set):
    checked = 0
    for mask in _read_masks(small_set):
        count, _ = cv2.connectedComponents((mask > 0).astype(np.uint8))
        left_x = np.nonzero(mask == toy_people.L_ARM)[1]
        right_x = np.nonzero(mask == toy_people.R_ARM)[1]
        # One component means one person, so the arms belong together.
        if count == 2 and left_x.size and right_x.size:
            assert left_x.mean() > right_x.mean()
            checked += 1
    assert checked > 0


def test_marker_records_parameters(small_set):
    marker = json.loads((small_set / "toy_people.json").read_text())
    sizes = {"min_size": 96, "max_size": 160}
    counts = {"num_images": SMALL, "num_val_images": 50}
    assert marker == {"layout": "cihp", "seed": 0, **counts, **sizes}


def test_ensure_keeps_a_matching_set(tmp_path):
    root = toy_people.generate(tmp_path / "cihp", 3)
    marker = root / "toy_people.json"
    os.utime(marker, (1, 1))
    assert toy_people.ensure(root, 3) == root
    assert marker.stat().st_mtime == 1


def test_ensure_regenerates_when_parameters_differ(tmp_path):
    root = toy_people.generate(tmp_path / "cihp", 3)
    toy_people.ensure(root, 5, seed=1)
    assert len(_read_masks(root)) == 5
    assert json.loads((root / "toy_people.json").read_text())["seed"] == 1


def test_generate_leaves_no_temporary_directory(tmp_path):
    toy_people.generate(tmp_path / "cihp", 2)
    assert [p.name for p in tmp_path.iterdir()] == ["cihp"]


def test_generate_refuses_to_replace_unrelated_directory(tmp_path):
    root = tmp_path / "cihp"
    root.mkdir()
    (root / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        toy_people.generate(root, 2)
    assert (root / "precious.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["cihp"]


def test_every_class_appears_in_250_images(tmp_path):
    root = toy_people.generate(tmp_path / "cihp", 250)
    present = set()
    for mask in _read_masks(root):
        present.update(np.unique(mask).tolist())
    assert present == set(range(20))


def test_two_first_runs_at_once_write_the_set_one_after_the_other(
    toy_root, monkeypatch
):
    writing, overlaps = [], []

    def ensure(root, num_images, progress):  # stands in for writing the set
        overlaps.append(bool(writing))
        writing.append(root)
        time.sleep(0.3)
        writing.pop()
        return toy_root

    monkeypatch.setattr(toy_people, "ensure", ensure)
    args = Namespace(download=False, quick=True, data_dir=None, ignore_index=255)
    args.num_train_images, args.num_val_images = 8, 4
    with ThreadPoolExecutor(2) as pool:  # two runs, each with its own lock object
        found = [pool.submit(datasets.get_dataset, args) for _ in range(2)]
        assert [run.result().root for run in found] == [toy_root, toy_root]
    assert overlaps == [False, False]
