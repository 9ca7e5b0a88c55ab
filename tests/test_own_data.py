"""Your own data: VOC, labelmap exports and plain folders, any classes, a void label."""

import contextlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deeplabv3_plus as dl
from conftest import fails_with, parse, run_args, run_tutorial, split
from data import make_toy_people
from deeplab_support import UserError, cli, datasets, files, metrics, runs
from deeplab_support.classes import CIHP, CLASSES_ENTRY, VOC, VOID, mirror_classes
from deeplab_support.classes import model_classes, with_void

SIZES = dict(num_images=12, num_val_images=4, min_size=64, max_size=96)


def generated(tmp_path_factory, layout):
    """A synthetic data set in this layout: `voc`, `cvat` or `folder`."""
    root = tmp_path_factory.mktemp(layout) / layout
    return make_toy_people.generate(root, layout=layout, **SIZES)


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    """A synthetic Pascal VOC folder: VOCdevkit/VOC2012, palette masks, void bands."""
    return generated(tmp_path_factory, "voc")


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    """A folder of one's own: images/, masks/ in colour, val/ and labelmap.txt."""
    return generated(tmp_path_factory, "folder")


def train_tiny(data_dir, output_dir, *extra):
    """Train one tiny epoch in this process; return the lines it printed."""
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        run_tutorial(*run_args(data_dir, output_dir, *extra))
    return printed.getvalue().splitlines()


@pytest.fixture(scope="module")
def voc_run(voc_root, tmp_path_factory):
    """One tiny training run on the VOC folder: (output folder, printed lines)."""
    output_dir = tmp_path_factory.mktemp("voc_run") / "outputs"
    return output_dir, train_tiny(voc_root, output_dir)


def voc_lists(root):  # the folder of train.txt and val.txt
    return datasets.find(root).root / "ImageSets" / "Segmentation"


def test_voc_is_found_nested_with_its_21_built_in_classes(voc_root):
    data = datasets.find(voc_root)
    assert data.layout == "Pascal VOC layout"
    assert data.root == voc_root / "VOCdevkit" / "VOC2012"
    assert data.classes.num_classes == 21 and data.classes.void == VOID
    person = (data.classes.names[15], data.classes.colors[15])
    assert person == ("person", (192, 128, 128))  # VOC's own palette


def test_voc_val_txt_is_the_official_split_and_train_tail_reads_train_txt(voc_root):
    lists = voc_lists(voc_root)
    train, val = ((lists / f"{n}.txt").read_text().split() for n in ["train", "val"])
    _, official = split(voc_root, 8, 4, "official")
    _, tail = split(voc_root, 8, 4, "train-tail")
    assert [image.stem for image, _ in official] == val
    assert [image.stem for image, _ in tail] == train[8:12]


def test_evaluating_on_the_official_split_needs_no_training_images(voc_root):
    args = parse("--evaluate", "m.keras", "--val-split", "official")  # 200 training
    args.num_val_images = 3
    pairs = datasets.validation_pairs(datasets.find(voc_root), args, VOC)
    val = (voc_lists(voc_root) / "val.txt").read_text().split()[:3]
    assert [Path(image).stem for image, _ in pairs] == val


@pytest.mark.parametrize("val_split", ["train-tail", "official"])
def test_an_image_listed_twice_is_an_error_not_a_scored_training_image(
    voc_root, tmp_path, val_split
):
    lists = voc_lists(shutil.copytree(voc_root, tmp_path / "voc"))
    twice = (lists / "val.txt").read_text().split()[0]  # and the tail's first
    names = [twice] + (lists / "train.txt").read_text().split()[:7]
    (lists / "train.txt").write_text("\n".join(names + names[:4]) + "\n")
    with pytest.raises(UserError, match=f"image .*{twice}.* is listed twice"):
        split(tmp_path / "voc", 8, 4, val_split)


def test_a_val_folder_linked_to_the_training_folder_is_listed_twice(
    folder_root, tmp_path
):
    copy = shutil.copytree(folder_root, tmp_path / "mine")
    shutil.rmtree(copy / "val")
    (copy / "val").mkdir()
    for folder in ["images", "masks"]:
        (copy / "val" / folder).symlink_to(copy / folder)
    with pytest.raises(UserError, match="is listed twice"):
        split(copy, 8, 4, "official")


def test_voc_lists_name_files_with_spaces_and_upper_case_extensions(voc_root, tmp_path):
    lists = voc_lists(shutil.copytree(voc_root, tmp_path / "voc"))
    root, names = lists.parent.parent, (lists / "train.txt").read_text().split()
    (root / "JPEGImages" / f"{names[0]}.jpg").rename(root / "JPEGImages" / "IMG 1.JPG")
    masks = root / "SegmentationClass"
    (masks / f"{names[0]}.png").rename(masks / "IMG 1.png")
    (lists / "train.txt").write_text("\n".join(["IMG 1", *names[1:]]) + "\n")
    image, mask = datasets.find(tmp_path / "voc").train[0]
    assert (image.name, mask.name) == ("IMG 1.JPG", "IMG 1.png")


def test_a_listed_name_without_its_files_is_an_error_naming_it(voc_root, tmp_path):
    train_txt = voc_lists(shutil.copytree(voc_root, tmp_path / "voc")) / "train.txt"
    train_txt.write_text(train_txt.read_text() + "2007_000999\n")
    with pytest.raises(UserError, match=r"train.txt line 13 names '2007_000999'"):
        datasets.find(tmp_path / "voc")


def test_a_labelmap_export_brings_its_names_and_colour_masks(tmp_path_factory):
    data = datasets.find(generated(tmp_path_factory, "cvat"))
    assert data.layout == "Pascal VOC layout with labelmap.txt"
    assert data.classes.names == make_toy_people.PARTS.names
    _, mask = data.train[0]
    colours = np.asarray(Image.open(mask))
    assert colours.ndim == 3  # RGB: a colour per class, read back to the same ids
    ids = files.mask_ids(Image.open(mask), mask, data.classes)
    np.testing.assert_array_equal(data.classes.palette()[ids], colours)


def test_a_folder_of_your_own_is_paired_by_stem_with_its_val_folder(folder_root):
    data = datasets.find(folder_root)
    assert data.layout == "images/ and masks/ layout"
    stems = [(f"{n:07d}",) * 2 for n in range(1_000_000, 1_000_004)]
    assert [(image.stem, mask.stem) for image, mask in data.val] == stems
    assert data.classes.num_classes == 9


@pytest.mark.parametrize(
    "folder, twin", [("images", "0000000.png"), ("masks", "0000000.PNG")]
)
def test_two_files_of_one_name_but_for_the_extension_are_an_error(
    folder_root, tmp_path, folder, twin
):
    copy = shutil.copytree(folder_root, tmp_path / "mine")
    Image.new("RGB", (8, 8)).save(copy / folder / twin, format="PNG")
    with pytest.raises(UserError, match=f"{twin}.* the same name but for"):
        datasets.find(copy)


def test_masks_named_with_a_suffix_are_an_error_saying_how_to_name_them(tmp_path):
    for folder in ["images", "masks"]:
        (tmp_path / folder).mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "cat1.jpg")
    Image.new("L", (8, 8)).save(tmp_path / "masks" / "cat1_mask.png")
    advice = r"holds cat1_mask.png.*name each mask as its image with .png \(cat1.png"
    with pytest.raises(UserError, match=advice):
        datasets.pair_by_stem(tmp_path / "images", tmp_path / "masks")


def test_a_folder_without_a_labelmap_says_what_to_write(folder_root, tmp_path):
    copy = shutil.copytree(folder_root, tmp_path / "mine")
    (copy / "labelmap.txt").unlink()
    with pytest.raises(UserError, match="no labelmap.txt.*'name:r,g,b::'"):
        datasets.find(copy)


@pytest.mark.parametrize(
    "line",
    ["head:300,0,0::", "head:1,2::", ":1,2,3::", "head", "hair:0,0,0::", "a,b:1,1,1::"]
    + ["void:0,0,0::"],  # void in a class's colour
)
def test_a_malformed_labelmap_line_is_named_with_its_number(tmp_path, line):
    (tmp_path / "labelmap.txt").write_text(f"# a comment\nbackground:0,0,0::\n{line}\n")
    with pytest.raises(UserError, match="labelmap.txt line 3"):
        datasets.read_labelmap(tmp_path / "labelmap.txt")


@pytest.mark.parametrize("count", [1, 256])
def test_a_labelmap_of_1_or_more_than_255_classes_is_refused(tmp_path, count):
    lines = [f"c{i}:{i // 65536},{i // 256 % 256},{i % 256}::" for i in range(count)]
    (tmp_path / "labelmap.txt").write_text("\n".join(lines))
    with pytest.raises(UserError, match=f"defines {count} classes; .* 2 to 255"):
        datasets.read_labelmap(tmp_path / "labelmap.txt")


def test_a_labelmap_line_named_void_sets_the_void_colour(tmp_path):
    (tmp_path / "labelmap.txt").write_text("bg:0,0,0::\ncat:9,9,9::\nvoid:1,1,1::\n")
    classes = datasets.read_labelmap(tmp_path / "labelmap.txt")
    assert classes.names == ("bg", "cat") and classes.void_color == (1, 1, 1)


def test_images_in_subfolders_alone_are_an_error_saying_so(folder_root, tmp_path):
    copy = shutil.copytree(folder_root, tmp_path / "mine")
    shutil.move(copy / "images", tmp_path / "batch1")
    (copy / "images").mkdir()
    shutil.move(tmp_path / "batch1", copy / "images")
    with pytest.raises(UserError, match="no .jpg or .png images .its subfolders are"):
        datasets.find(copy)


def test_a_folder_of_no_known_layout_says_what_each_expects(capsys, tmp_path):
    (tmp_path / "photos").mkdir()
    argv = run_args(tmp_path, tmp_path / "out")
    fails_with(capsys, argv, "Training/Images", "JPEGImages", "images/, masks/")


def test_an_unknown_colour_names_its_file_colour_and_pixels(folder_root, tmp_path):
    data = datasets.find(folder_root)
    pixels = np.asarray(Image.open(data.train[0][1])).copy()
    pixels[0, :3] = (1, 2, 3)
    Image.fromarray(pixels).save(tmp_path / "odd.png")
    with pytest.raises(UserError, match=r"odd.png holds colour \(1, 2, 3\) on 3 pix"):
        files.check_mask(tmp_path / "odd.png", data.classes)


def test_a_colour_mask_saved_with_a_palette_of_its_own_reads_its_colours(
    folder_root, tmp_path
):
    data = datasets.find(folder_root)
    colours = Image.open(data.train[0][1])
    colours.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "indexed.png")
    expected = files.mask_ids(colours, data.train[0][1], data.classes)
    ids = files.mask_ids(Image.open(tmp_path / "indexed.png"), "", data.classes)
    np.testing.assert_array_equal(ids, expected)


def test_classes_in_no_training_mask_are_named(tmp_path, capsys):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    binary = np.zeros((4, 4), np.uint8)
    binary[1:3, 1:3] = 255  # white: the object, as drawn, but 255 reads as void
    Image.fromarray(binary).save(tmp_path / "a_mask.png")
    classes = datasets.ClassTable(["background", "object"], [(0, 0, 0), (255,) * 3])
    pairs = [(tmp_path / "a.png", tmp_path / "a_mask.png")]
    files.check_pairs(pairs, classes)
    assert capsys.readouterr().err == ""  # validation: a class may be absent
    files.check_pairs(pairs, classes, training=True)
    warning = capsys.readouterr().err
    assert "1 of the 2 classes occur in none of the 1 training masks" in warning
    assert "learn them: object." in warning and "255 is the void label" in warning


def test_the_void_label_must_lie_above_the_class_ids():
    with pytest.raises(UserError, match="--ignore-index 3"):
        with_void(VOC, 3)
    assert with_void(VOC, 21).void == 21


def test_sided_class_names_pair_in_any_case_or_separator():
    names = ["bg", "Left-arm", "Right-arm", "left_hand", "RIGHT_HAND", "LeftFoot"]
    names += ["RightFoot", "leftover", "right"]
    assert mirror_classes(names) == [0, 2, 1, 4, 3, 6, 5, 7, 8]


def test_palette_masks_keep_void_in_the_samples_the_figures_show(voc_root):
    data = datasets.find(voc_root)
    pairs = files.check_pairs(data.train[:4], data.classes)
    images, masks = dl.first_four(pairs, 64, data.classes)
    assert images.shape == (4, 64, 64, 3)
    assert set(np.unique(masks).tolist()) == {0, 15, VOID}


def test_void_pixels_are_left_out_of_the_full_resolution_matrix():
    truth = np.array([[0, 1, VOID, VOID]])
    matrix = metrics.confusion_matrix(truth, np.array([[0, 1, 1, 0]]), 2, VOID)
    np.testing.assert_array_equal(matrix, [[1, 0], [0, 1]])


def test_the_ids_png_holds_class_ids_under_the_class_colours(tmp_path):
    predicted = np.array([[0, 15], [15, 20]])
    colored = VOC.palette()[predicted]
    runs.claim(tmp_path, [path.name for path in cli.prediction_paths(tmp_path / "x")])
    cli.save_prediction(tmp_path / "x", dict(mask=colored), predicted, VOC)
    written = Image.open(tmp_path / "x_ids.png")
    assert written.mode == "P" and written.size == (2, 2)
    np.testing.assert_array_equal(np.asarray(written), predicted)
    np.testing.assert_array_equal(np.asarray(written.convert("RGB")), colored)


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
def test_the_first_lines_name_the_precision_the_layout_its_counts_and_classes(voc_run):
    _, lines = voc_run
    assert lines[0] == "Precision: float32, since --precision asked for it."
    assert lines[1].startswith("Pascal VOC layout in ")
    assert "8 training and 4 validation images, 21 classes, void label 255" in lines[1]


DAMAGES = [dict(void=5), dict(void=300), dict(void_color=[1, 2])]  # void=5: a class
DAMAGES += [dict(colors=[[0, 0, 0]] * 19), dict(colors=[[999, 0, 0]] * 20)]
DAMAGES += [dict(names=["a"] * 20), dict(keep_aspect="no"), dict(mapped=1)]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_class_table_in_a_model_file_is_refused(tmp_path, damage):
    path = tmp_path / "model.keras"
    for table, fine in [(CIHP.as_dict(), True), ({**CIHP.as_dict(), **damage}, False)]:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(CLASSES_ENTRY, json.dumps(table))
        if fine:
            assert model_classes(path, 20) == CIHP
    with pytest.raises(UserError, match="carries no readable class table"):
        model_classes(path, 20)


@pytest.mark.slow
def test_a_saved_model_keeps_its_class_table_and_scores_those_classes(voc_run):
    output_dir, _ = voc_run
    model, classes = cli.load_model(output_dir / "model.keras", "--model")
    assert model.output_shape == (None, 64, 64, 21) and classes == VOC
    scores = json.loads((output_dir / "evaluation.json").read_text())
    assert list(scores["per_class_iou"]) == list(VOC.names)


@pytest.mark.slow
def test_a_copied_model_predicts_its_own_classes(voc_run, voc_root, tmp_path, capsys):
    shutil.copy(voc_run[0] / "model.keras", tmp_path / "model.keras")
    photo = datasets.find(voc_root).val[0][0]
    capsys.readouterr()
    argv = ["--predict", photo, "--model", tmp_path / "model.keras"]
    run_tutorial(*argv, "--output-dir", tmp_path / "predicted")
    ids = Image.open(tmp_path / "predicted" / f"{photo.stem}_ids.png")
    palette = np.reshape(ids.getpalette()[: 21 * 3], (21, 3))
    np.testing.assert_array_equal(palette, VOC.colors)
    found = capsys.readouterr().out.split(":", 1)[1]  # "name share%, ..."
    names = [part.rsplit(" ", 1)[0].strip() for part in found.split(",")]
    assert names and set(names) <= set(VOC.names)


@pytest.mark.slow
def test_evaluating_on_another_class_set_is_an_error(
    capsys, voc_run, toy_root, tmp_path
):
    argv = ["--evaluate", voc_run[0] / "model.keras", "--data-dir", toy_root]
    phrase = "class 0 is 'background' in the model but 'Background' in the data"
    fails_with(capsys, argv + ["--output-dir", tmp_path], "predicts 21 classes", phrase)


@pytest.mark.slow
def test_the_demo_legend_names_the_model_s_classes(voc_run):
    import demo

    segmenter = demo.Segmenter(voc_run[0] / "model.keras")
    legend = segmenter.legend(np.full((4, 4), 15))
    assert "person: 100.0%" in legend and "rgb(192,128,128)" in legend


@pytest.mark.slow
def test_a_folder_of_colour_masks_trains_with_sided_classes(folder_root, tmp_path):
    lines = train_tiny(folder_root, tmp_path, "--augment")
    assert "9 classes" in lines[1]
    scores = json.loads((tmp_path / "evaluation.json").read_text())
    assert list(scores["per_class_iou"]) == list(make_toy_people.PARTS.names)
