"""Full-resolution evaluation, your own photos, augmentation and the LR schedule."""

import json

import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
from conftest import run_tutorial, schedule_of, split
from deeplab_support import UserError, cli, files, metrics
from deeplab_support.datasets import CIHP


def test_metrics_match_a_hand_computed_confusion_matrix():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 0, 1, 1, 1, 2, 0])
    matrix = metrics.confusion_matrix(labels, predictions, 4)
    np.testing.assert_array_equal(matrix[:3, :3], [[3, 1, 0], [0, 2, 0], [1, 0, 1]])
    scores = metrics.segmentation_metrics(matrix, ["a", "b", "c", "d"])
    iou = {"a": 3 / 5, "b": 2 / 3, "c": 1 / 2, "d": None}  # d: never seen, no IoU
    assert scores["per_class_iou"] == pytest.approx(iou)
    assert scores["pixel_accuracy"] == pytest.approx(6 / 8)
    assert scores["mean_accuracy"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    assert scores["mean_iou"] == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)
    weighted = 4 / 8 * 3 / 5 + 2 / 8 * 2 / 3 + 2 / 8 * 1 / 2
    assert scores["frequency_weighted_iou"] == pytest.approx(weighted)


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


def test_poly_schedule_decays_to_zero_with_power_0_9():
    optimizer = dl.make_optimizer(0.01, "poly", total_steps=100)
    schedule = schedule_of(optimizer)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * 0.5**0.9)
    assert float(schedule(100)) == pytest.approx(0.0)


def test_cosine_schedule_warms_up_over_a_tenth_then_decays_to_zero():
    schedule = schedule_of(dl.make_optimizer(0.01, "cosine", total_steps=100))
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.005)  # halfway up the warm-up
    assert float(schedule(10)) == pytest.approx(0.01)
    assert float(schedule(55)) == pytest.approx(0.005)  # halfway down the cosine
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)


def test_evaluate_scores_a_saved_model_at_full_resolution(tiny_run, toy_root, tmp_path):
    argv = ["--evaluate", tiny_run / "model.keras", "--data-dir", toy_root]
    argv += ["--output-dir", tmp_path, "--num-train-images", 8, "--num-val-images", 4]
    run_tutorial(*argv)
    scores = json.loads((tmp_path / "evaluation.json").read_text())
    keys = {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"}
    assert keys <= set(scores) and 0 <= scores["pixel_accuracy"] <= 1
    assert list(scores["per_class_iou"]) == list(CIHP.names)
    assert (tmp_path / "per_class_iou.png").is_file()
    assert (tmp_path / "confusion_matrix.png").is_file()


def test_predict_writes_mask_and_overlay_at_the_photos_size(
    tiny_run, toy_root, tmp_path, capsys
):
    photos = sorted((toy_root / "Training" / "Images").glob("*.jpg"))[:3]
    folder = tmp_path / "album"
    folder.mkdir()
    Image.open(photos[2]).convert("L").save(folder / "grey.png")
    capsys.readouterr()
    argv = ["--predict", photos[0], photos[1], folder]
    argv += ["--model", tiny_run / "model.keras", "--output-dir", tmp_path / "out"]
    run_tutorial(*argv)
    for stem, source in [(photos[0].stem, photos[0]), ("grey", folder / "grey.png")]:
        for kind in ["mask", "overlay"]:
            written = Image.open(tmp_path / "out" / f"{stem}_{kind}.png")
            assert written.size == Image.open(source).size and written.mode == "RGB"
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("%" in line for line in lines)


def test_tiff_named_jpg_is_refused_by_predict(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg", format="TIFF")
    with pytest.raises(UserError, match="TIFF file; convert it"):
        files.read_photo(tmp_path / "x.jpg")


def test_predict_outputs_of_same_named_photos_do_not_overwrite(tmp_path):
    for folder in "ab":
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "x.jpg")
    outputs = cli.photo_outputs([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    names = [prefix.name for _, prefix in outputs]
    assert names == ["x", "x-2"]
