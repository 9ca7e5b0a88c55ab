"""Your own data: VOC, labelmap exports and plain folders, any classes, a void label."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
from conftest import ROOT, fails_with, run_args, run_python, run_tutorial, split
from data import make_toy_people
from deeplab_support import UserError, cli, datasets, files, metrics, runs
from deeplab_support.classes import (
    VOC,
    VOID,
    mirror_classes,
    model_classes,
    save_classes,
    with_void,
)

LISTS = ["train.txt", "val.txt"]
SIZES = dict(num_images=12, num_val_images=4, min_size=64, max_size=96)


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    """A synthetic Pascal VOC folder: VOCdevkit/VOC2012, palette masks, void bands."""
    root = tmp_path_factory.mktemp("voc") / "voc"
    return make_toy_people.generate(root, layout="voc", **SIZES)


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    """A folder of one's own: images/, masks/ in colour, val/ and labelmap.txt."""
    root = tmp_path_factory.mktemp("folder") / "mine"
    return make_toy_people.generate(root, layout="folder", **SIZES)


@pytest.fixture(scope="module")
def cvat_root(tmp_path_factory):
    """An annotation tool's export: the VOC layout with a labelmap and colour masks."""
    root = tmp_path_factory.mktemp("cvat") / "export"
    return make_toy_people.generate(root, layout="cvat", **SIZES)


def train_tiny(data_dir, output_dir, *extra):
    """Train one tiny epoch in this process; return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        run_tutorial(*run_args(data_dir, output_dir, *extra))
    return printed.getvalue()


@pytest.fixture(scope="module")
def voc_run(voc_root, tmp_path_factory):
    """One tiny training run on the VOC folder: (output folder, printed lines)."""
    output_dir = tmp_path_factory.mktemp("voc_run") / "outputs"
    return output_dir, train_tiny(voc_root, output_dir).splitlines()


def painted(mask_path, classes):
    """The colours that a mask's ids stand for, as an (H, W, 3) array."""
    ids = files.mask_ids(Image.open(mask_path), mask_path, classes)
    return classes.palette()[ids]


def test_voc_is_found_nested_with_its_21_built_in_classes(voc_root):
    data = datasets.find(voc_root)
    assert data.layout == "Pascal VOC layout"
    assert data.root == voc_root / "VOCdevkit" / "VOC2012"
    assert data.classes.num_classes == 21 and data.classes.void == VOID
    assert data.classes.names[15] == "person"
    assert data.classes.colors[15] == (192, 128, 128)  # VOC's own palette


def test_voc_val_txt_is_the_official_split_and_train_tail_reads_train_txt(voc_root):
    lists = datasets.find(voc_root).root / "ImageSets" / "Segmentation"
    listed = {name: (lists / name).read_text().split() for name in LISTS}
    _, official = split(voc_root, 8, 4, "official")
    _, tail = split(voc_root, 8, 4, "train-tail")
    assert [image.stem for image, _ in official] == listed["val.txt"]
    assert [image.stem for image, _ in tail] == listed["train.txt"][8:12]


@pytest.mark.parametrize("val_split", ["train-tail", "official"])
def test_an_image_listed_twice_is_an_error_not_a_scored_training_image(
    voc_root, tmp_path, val_split
):
    copy = shutil.copytree(voc_root, tmp_path / "voc")
    lists = copy / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    first_val = (lists / "val.txt").read_text().split()[0]
    train_txt = lists / "train.txt"
    train_txt.write_text(f"{first_val}\n" + train_txt.read_text())
    names = train_txt.read_text().split()
    (lists / "train.txt").write_text("\n".join(names[:8] + names[:4]) + "\n")
    with pytest.raises(UserError, match=f"image .*{first_val}.* is listed twice"):
        split(copy, 8, 4, val_split)


def test_a_listed_name_without_its_files_is_an_error_naming_it(voc_root, tmp_path):
    copy = shutil.copytree(voc_root, tmp_path / "voc")
    train_txt = copy / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    train_txt /= "train.txt"
    train_txt.write_text(train_txt.read_text() + "2007_000999\n")
    with pytest.raises(UserError, match=r"train.txt line 13 names '2007_000999'"):
        datasets.find(copy)


def test_palette_masks_are_read_as_their_index_with_void(voc_root):
    data = datasets.find(voc_root)
    _, mask = data.train[0]
    assert Image.open(mask).mode == "P"
    checked = files.check_mask(mask, data.classes)
    ids = np.asarray(dl.read_image(checked, 64, mask=True))
    assert set(np.unique(ids).tolist()) == {0, 15, VOID}


def test_a_labelmap_export_brings_its_names_and_colour_masks(cvat_root):
    data = datasets.find(cvat_root)
    assert data.layout == "Pascal VOC layout with labelmap.txt"
    assert data.classes.names == make_toy_people.PARTS.names
    _, mask = data.train[0]
    assert Image.open(mask).mode == "RGB"
    colours = np.asarray(Image.open(mask))
    np.testing.assert_array_equal(painted(mask, data.classes), colours)


def test_a_folder_of_your_own_is_paired_by_stem_with_its_val_folder(folder_root):
    data = datasets.find(folder_root)
    assert data.layout == "images/ and masks/ layout"
    assert [(i.stem, m.stem) for i, m in data.val] == [
        (f"{n:07d}", f"{n:07d}") for n in range(1_000_000, 1_000_004)
    ]
    assert data.classes.num_classes == 9


@pytest.mark.parametrize(
    "folder, twin", [("images", "0000000.png"), ("masks", "0000000.PNG")]
)
def test_two_files_of_one_name_but_for_the_extension_are_an_error(
    folder_root, tmp_path, folder, twin
):
    copy = shutil.copytree(folder_root, tmp_path / "mine")
    Image.new("RGB", (8, 8)).save(copy / folder / twin, format="PNG")
    with pytest.raises(UserError, match="the same name but for the extension") as e:
        datasets.find(copy)
    assert twin in str(e.value)


def test_masks_named_with_a_suffix_are_an_error_saying_how_to_name_them(tmp_path):
    for folder in ["images", "masks"]:
        (tmp_path / folder).mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "cat1.jpg")
    Image.new("L", (8, 8)).save(tmp_path / "masks" / "cat1_mask.png")
    with pytest.raises(UserError) as error:
        datasets.pair_by_stem(tmp_path / "images", tmp_path / "masks")
    assert "holds cat1_mask.png" in str(error.value)
    assert "name each mask as its image with .png (cat1.png for cat1.jpg)" in str(
        error.value
    )


def test_a_folder_without_a_labelmap_says_what_to_write(folder_root, tmp_path):
    copy = shutil.copytree(folder_root, tmp_path / "mine")
    (copy / "labelmap.txt").unlink()
    with pytest.raises(UserError, match="no labelmap.txt.*'name:r,g,b::'"):
        datasets.find(copy)


@pytest.mark.parametrize(
    "line", ["head:300,0,0::", "head:1,2::", ":1,2,3::", "head", "hair:0,0,0::"]
)
def test_a_malformed_labelmap_line_is_named_with_its_number(tmp_path, line):
    (tmp_path / "labelmap.txt").write_text(f"# a comment\nbackground:0,0,0::\n{line}\n")
    with pytest.raises(UserError, match="labelmap.txt line 3"):
        datasets.read_labelmap(tmp_path / "labelmap.txt")


def test_a_labelmap_line_named_void_sets_the_void_colour(tmp_path):
    (tmp_path / "labelmap.txt").write_text("bg:0,0,0::\ncat:9,9,9::\nvoid:1,1,1::\n")
    classes = datasets.read_labelmap(tmp_path / "labelmap.txt")
    assert classes.names == ("bg", "cat") and classes.void_color == (1, 1, 1)


def test_a_folder_of_no_known_layout_says_what_each_expects(capsys, tmp_path):
    (tmp_path / "photos").mkdir()
    argv = run_args(tmp_path, tmp_path / "out")
    fails_with(capsys, argv, "Training/Images", "JPEGImages", "images/, masks/")


def test_an_unknown_colour_names_the_file_the_colour_and_its_pixels(folder_root):
    data = datasets.find(folder_root)
    _, mask = data.train[0]
    pixels = np.asarray(Image.open(mask)).copy()
    pixels[0, :3] = (1, 2, 3)
    Image.fromarray(pixels).save(mask.with_name("odd.png"))
    with pytest.raises(UserError, match=r"odd.png holds colour \(1, 2, 3\) on 3 pix"):
        files.check_mask(mask.with_name("odd.png"), data.classes)
    mask.with_name("odd.png").unlink()


def test_an_id_above_the_classes_that_is_not_void_is_an_error(tmp_path):
    ids = np.zeros((4, 4), np.uint8)
    ids[0, 0] = 21
    Image.fromarray(ids).save(tmp_path / "m.png")
    with pytest.raises(UserError, match="id 21 on 1 pixel, neither a class id"):
        files.check_mask(tmp_path / "m.png", VOC)


def test_the_void_label_must_lie_above_the_class_ids():
    with pytest.raises(UserError, match="--ignore-index 3"):
        with_void(VOC, 3)
    assert with_void(VOC, 21).void == 21


def test_sided_class_names_pair_in_any_case_or_separator():
    names = ["bg", "Left-arm", "Right-arm", "left_hand", "RIGHT_HAND", "LeftFoot"]
    names += ["RightFoot", "leftover", "right"]
    assert mirror_classes(names) == [0, 2, 1, 4, 3, 6, 5, 7, 8]


def test_mirroring_without_sided_classes_changes_no_id_and_keeps_void():
    mask = np.array([[[0], [15], [20], [VOID]]], dtype=np.uint8)
    _, mirrored = dl.mirror(np.zeros((1, 4, 3), np.uint8), mask, VOC.flip)
    assert np.asarray(mirrored)[0, :, 0].tolist() == [VOID, 20, 15, 0]


def test_the_figures_show_void_pixels_as_void(voc_root):
    data = datasets.find(voc_root)
    pairs = files.check_pairs(data.train[:4], data.classes)
    images, masks = dl.first_four(pairs, 64, data.classes)
    assert images.shape == (4, 64, 64, 3)
    assert set(np.unique(masks).tolist()) == {0, 15, VOID}


def test_void_pixels_are_left_out_of_the_full_resolution_matrix():
    truth = np.array([[0, 1, VOID, VOID]])
    matrix = metrics.confusion_matrix(truth, np.array([[0, 1, 1, 0]]), 2, VOID)
    other = metrics.confusion_matrix(truth, np.array([[0, 1, 0, 1]]), 2, VOID)
    np.testing.assert_array_equal(matrix, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(matrix, other)


def test_the_ids_png_holds_class_ids_under_the_class_colours(tmp_path):
    predicted = np.array([[0, 15], [15, 20]])
    colored = VOC.palette()[predicted]
    runs.claim(tmp_path, [path.name for path in cli.prediction_paths(tmp_path / "x")])
    cli.save_prediction(tmp_path / "x", colored, colored, predicted, VOC)
    written = Image.open(tmp_path / "x_ids.png")
    assert written.mode == "P" and written.size == (2, 2)
    np.testing.assert_array_equal(np.asarray(written), predicted)
    np.testing.assert_array_equal(np.asarray(written.convert("RGB")), colored)


def test_a_saved_model_keeps_its_class_table_and_loads_in_plain_keras(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(21, 1)])
    model.save(tmp_path / "m.keras")
    save_classes(tmp_path / "m.keras", VOC)
    assert model_classes(tmp_path / "m.keras", 21) == VOC
    assert keras.saving.load_model(tmp_path / "m.keras").output_shape[-1] == 21


def test_a_model_of_another_class_count_loads_all_but_its_classifier(tmp_path, capsys):
    source = dl.DeeplabV3Plus(32, 5)
    source.save(tmp_path / "five.keras")
    target = dl.DeeplabV3Plus(32, 20)
    fresh = target.layers[-2].get_weights()
    files.load_weights(target, str(tmp_path / "five.keras"))
    assert "except its classifier" in capsys.readouterr().out
    for mine, theirs in zip(target.layers[:-2], source.layers[:-2]):
        for a, b in zip(mine.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(target.layers[-2].get_weights(), fresh):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_the_first_lines_name_the_precision_the_layout_its_counts_and_classes(
    voc_run,
):
    _, lines = voc_run
    assert lines[0] == "Precision: float32, since --precision asked for it."
    assert lines[1].startswith("Pascal VOC layout in ")
    assert "8 training and 4 validation images, 21 classes, void label 255" in lines[1]


@pytest.mark.slow
def test_a_voc_model_scores_the_21_voc_classes(voc_run):
    output_dir, _ = voc_run
    model, classes = cli.load_model(output_dir / "model.keras", "--model")
    assert model.output_shape == (None, 64, 64, 21) and classes == VOC
    scores = json.loads((output_dir / "evaluation.json").read_text())
    assert list(scores["per_class_iou"]) == list(VOC.names)


@pytest.mark.slow
def test_predict_with_a_model_copied_away_uses_its_own_classes(
    voc_run, voc_root, tmp_path, capsys
):
    output_dir, _ = voc_run
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(output_dir / "model.keras", elsewhere / "model.keras")
    photo = datasets.find(voc_root).val[0][0]
    capsys.readouterr()
    argv = ["--predict", photo, "--model", elsewhere / "model.keras"]
    run_tutorial(*argv, "--output-dir", tmp_path / "predicted")
    ids = Image.open(tmp_path / "predicted" / f"{photo.stem}_ids.png")
    assert ids.size == Image.open(photo).size
    np.testing.assert_array_equal(
        np.reshape(ids.getpalette()[: 21 * 3], (21, 3)), VOC.colors
    )
    assert set(np.unique(np.asarray(ids)).tolist()) <= set(range(21))
    found = capsys.readouterr().out.split(":", 1)[1]
    names = [part.rsplit(" ", 1)[0].strip() for part in found.split(",")]
    assert names and set(names) <= set(VOC.names)


@pytest.mark.slow
def test_evaluating_a_model_on_another_class_set_is_an_error(
    capsys, voc_run, toy_root, tmp_path
):
    output_dir, _ = voc_run
    argv = ["--evaluate", output_dir / "model.keras", "--data-dir", toy_root]
    argv += ["--output-dir", tmp_path]
    fails_with(capsys, argv, "predicts 21 classes", "has 20")


@pytest.mark.slow
def test_the_demo_legend_names_the_model_s_classes(voc_run):
    import demo

    output_dir, _ = voc_run
    legend = demo.Segmenter(output_dir / "model.keras").legend(np.full((4, 4), 15))
    assert "person: 100.0%" in legend and "rgb(192,128,128)" in legend


@pytest.mark.slow
def test_a_folder_of_colour_masks_trains_with_sided_classes(folder_root, tmp_path):
    lines = train_tiny(folder_root, tmp_path / "out", "--augment").splitlines()
    assert lines[0].startswith("Precision: ") and "9 classes" in lines[1]
    scores = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert list(scores["per_class_iou"]) == list(make_toy_people.PARTS.names)


@pytest.mark.slow
def test_a_cihp_model_fine_tunes_on_a_folder_of_other_classes(
    tiny_run, folder_root, tmp_path
):
    weights = ["--weights", str(tiny_run / "model.keras")]
    lines = train_tiny(folder_root, tmp_path / "out", *weights).splitlines()
    assert any(
        "except its classifier" in line and "9 classes" in line for line in lines
    )
    model, classes = cli.load_model(tmp_path / "out" / "model.keras", "--model")
    assert model.output_shape[-1] == 9 and classes.names[4] == "left_arm"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_void_predictions_change_neither_the_loss_nor_any_score(backend):
    script = ROOT / "tests" / "scripts" / "void_scores.py"
    result = run_python(script, KERAS_BACKEND=backend)
    same, on_void, on_valid = json.loads(result.stdout.strip().splitlines()[-1])
    assert on_void == same  # loss, accuracy and mean IoU: unchanged
    assert all(on_valid[key] != same[key] for key in same)  # the test can fail
