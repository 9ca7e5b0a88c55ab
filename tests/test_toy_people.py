"""The synthetic toy-people data set in the CIHP layout."""

import json
import os
import time
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor

import cv2
import filelock
import numpy as np
import pytest
import scipy.io

from data import make_toy_people as toy_people
from deeplab_support import datasets, runs

SMALL = 12
QUICK = dict(download=False, quick=True, data_dir=None, ignore_index=255)  # --quick


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """A small generated data set shared by the read-only tests."""
    return toy_people.generate(tmp_path_factory.mktemp("toy") / "cihp", SMALL)


def stems(directory, suffix):
    """The sorted stems of the files with this suffix in a directory."""
    return sorted(p.stem for p in directory.iterdir() if p.suffix == suffix)


def read_masks(root):
    """Every training mask of a data set, as arrays."""
    paths = sorted((root / "Training" / "Category_ids").glob("*.png"))
    return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths]


def file_bytes(root):
    """Every file's path relative to root, mapped to its contents."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_the_layout_is_exactly_cihp_with_validation_from_its_own_range(small_set):
    found = sorted(p.name for p in small_set.iterdir())
    assert found == ["Training", "Validation", "human_colormap.mat", "toy_people.json"]
    validation = ("Validation", toy_people.VAL_OFFSET, 50)
    for folder, first, count in [("Training", 0, SMALL), validation]:
        images = stems(small_set / folder / "Images", ".jpg")
        masks = stems(small_set / folder / "Category_ids", ".png")
        assert images == masks == [f"{i:07d}" for i in range(first, first + count)]


def test_colormap_mat_holds_the_palette_in_unit_range(small_set):
    colormap = scipy.io.loadmat(small_set / "human_colormap.mat")["colormap"]
    np.testing.assert_array_equal(colormap, toy_people.CIHP_PALETTE / 255.0)


def test_masks_are_8bit_single_channel_class_ids_sized_like_images(small_set):
    for stem in stems(small_set / "Training" / "Images", ".jpg"):
        image = cv2.imread(str(small_set / "Training" / "Images" / f"{stem}.jpg"))
        mask_path = small_set / "Training" / "Category_ids" / f"{stem}.png"
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and mask.shape == image.shape[:2]
        assert mask.max() <= 19 and image.shape[2] == 3


def test_image_sizes_vary_within_range_and_are_not_all_square(small_set):
    shapes = {mask.shape for mask in read_masks(small_set)}
    assert any(height != width for height, width in shapes) and len(shapes) > 1
    assert all(96 <= size <= 160 for shape in shapes for size in shape)


def test_an_aspect_draws_every_image_that_much_taller_than_wide(tmp_path):
    root = toy_people.generate(tmp_path / "tall", 3, num_val_images=0, aspect=2)
    for path in (root / "Training" / "Images").iterdir():
        height, width = cv2.imread(str(path)).shape[:2]
        assert width == round(height / 2)
    assert json.loads((root / toy_people.MARKER_NAME).read_text())["aspect"] == 2


def test_the_seed_alone_decides_every_byte(tmp_path):
    first = file_bytes(toy_people.generate(tmp_path / "a", 4, seed=3))
    assert file_bytes(toy_people.generate(tmp_path / "b", 4, seed=3)) == first
    other = file_bytes(toy_people.generate(tmp_path / "c", 4, seed=4))
    image = "Training/Images/0000000.jpg"
    assert other[image] != first[image]


def test_sample_does_not_depend_on_num_images(tmp_path):
    short = file_bytes(toy_people.generate(tmp_path / "a", 2))
    long = file_bytes(toy_people.generate(tmp_path / "b", 5))
    assert short["Training/Images/0000001.jpg"] == long["Training/Images/0000001.jpg"]


def test_left_arm_is_on_the_image_right(small_set):
    checked = 0
    for mask in read_masks(small_set):
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


def test_ensure_regenerates_only_when_parameters_differ(tmp_path):
    root = toy_people.generate(tmp_path / "cihp", 3)
    marker = root / "toy_people.json"
    os.utime(marker, (1, 1))
    assert toy_people.ensure(root, 3) == root
    assert marker.stat().st_mtime == 1  # kept
    toy_people.ensure(root, 5, seed=1)
    assert len(read_masks(root)) == 5 and json.loads(marker.read_text())["seed"] == 1


def test_generate_leaves_no_temporary_directory(tmp_path):
    toy_people.generate(tmp_path / "cihp", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cihp", "run.json"]


def test_every_class_appears_in_250_images(tmp_path):
    root = toy_people.generate(tmp_path / "cihp", 250)
    present = set().union(*(np.unique(mask).tolist() for mask in read_masks(root)))
    assert present == set(range(20))


def test_two_first_runs_at_once_write_the_set_one_after_the_other(toy_root):
    writing, overlaps = [], []

    def ensure(root, num_images, progress):  # stands in for writing the set
        overlaps.append(bool(writing))
        writing.append(root)
        time.sleep(0.3)
        writing.pop()
        return toy_root

    args = Namespace(**QUICK, num_train_images=8, num_val_images=4)
    with ThreadPoolExecutor(2) as pool:  # two runs, each with its own lock object
        found = [pool.submit(datasets.get_dataset, args, ensure) for _ in range(2)]
        assert [run.result().root for run in found] == [toy_root, toy_root]
    assert overlaps == [False, False]


@pytest.mark.parametrize("cihp", [False, True])
def test_the_synthetic_set_says_why_it_is_used(
    toy_root, tmp_path, monkeypatch, capsys, cihp
):
    if cihp:
        (tmp_path / "cihp").mkdir()  # CIHP on disk, but --quick
    monkeypatch.setattr(datasets, "DATA_DIR", tmp_path / "cihp")
    args = Namespace(**QUICK, num_train_images=8, num_val_images=4)
    datasets.get_dataset(args, lambda root, num_images, progress: toy_root)
    said = capsys.readouterr().out
    assert ("--quick trains on the synthetic" in said) == cihp
    assert ("No CIHP data in" in said) == (not cihp)


def test_its_folder_is_free_for_other_writers_once_the_set_is_written(tmp_path):
    toy_people.generate(tmp_path / "cihp", 2, num_val_images=0)
    other = filelock.FileLock(runs.lock_file(tmp_path), thread_local=False)
    other.acquire(timeout=0)  # as another process's claim would, say --download
    other.release()
