"""--class-map: a model's classes merged many-to-one into a label set of yours."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
from PIL import Image

import deeplabv3_plus as tutorial
import demo
from conftest import Constant, fails_with, person, ROOT, run_args, run_tutorial
from data.make_toy_people import PARTS, TO_PARTS, generate
from deeplab_support import UserError, cli, files, metrics
from deeplab_support.classes import CIHP, VOID, ClassTable, read_class_map

FOUR = ClassTable(
    ["Background", "Left-arm", "Right-arm", "Glove"],
    [(0, 0, 0), (1, 1, 1), (2, 2, 2), (3, 3, 3)],
)
COARSE, PERSON = (ROOT / "class_maps" / f"cihp_{n}.txt" for n in ["coarse", "person"])


def read(tmp_path, text, source=FOUR):
    """Read a class map written with this text."""
    (tmp_path / "map.txt").write_text(text)
    return read_class_map(tmp_path / "map.txt", source)


@pytest.mark.parametrize("name", ["cihp_person.txt", "cihp_coarse.txt"])
def test_each_shipped_map_maps_every_cihp_class_once(name):
    class_map = read_class_map(ROOT / "class_maps" / name, CIHP)
    assert class_map.matrix.shape == (CIHP.num_classes, class_map.target.num_classes)
    assert class_map.matrix.sum(axis=1).tolist() == [1] * CIHP.num_classes
    ids = class_map.lookup[: CIHP.num_classes]
    assert (class_map.matrix[np.arange(CIHP.num_classes), ids] == 1).all()


def test_the_map_gives_targets_ids_colours_and_void_in_its_own_order(tmp_path):
    text = "# a comment\nbody (9, 8, 7): Left-arm, Right-arm\n\nrest: Background\n"
    class_map = read(tmp_path, text + "void (1,2,3): Glove\n")
    target = class_map.target
    assert target.names == ("body", "rest")
    assert target.colors == ((9, 8, 7), (0, 0, 0))  # else the first source's
    assert (target.void, target.void_color) == (FOUR.void, (1, 2, 3))
    assert class_map.lookup[[0, 1, 2, 3, FOUR.void]].tolist() == [1, 0, 0, 255, 255]
    assert class_map.matrix.tolist() == [[0, 1], [1, 0], [1, 0], [0, 0]]


def test_a_map_onto_the_classes_own_names_is_applied_not_skipped(tmp_path):
    swapped = "Background: Background\nLeft-arm: Right-arm\nRight-arm: Left-arm\n"
    class_map = read(tmp_path, swapped + "Glove (7,7,7): Glove\n")
    assert class_map.lookup[:4].tolist() == [0, 2, 1, 3]
    assert class_map.target.colors[3] == (7, 7, 7)
    misspelt = swapped.replace("Left-arm\n", "Left-ram\n") + "Glove: Glove\n"
    with pytest.raises(UserError, match="line 3 names 'Left-ram'"):
        read(tmp_path, misspelt)


def test_sided_target_names_still_swap_in_a_mirror(tmp_path):
    text = "bg: Background\nLeft-arm: Left-arm\nRight-arm: Right-arm, Glove\n"
    assert read(tmp_path, text).target.flip == [0, 2, 1]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: Background, Nose\nb: Left-arm, Right-arm, Glove\n", "names 'Nose'"),
        ("a: Background, Glove\nb: Left-arm, Glove, Right-arm\n", "a class twice"),
        ("a: Background\nb: Left-arm, Right-arm\n", "maps no target to Glove"),
        ("a: Background\na: Left-arm, Right-arm, Glove\n", "each target named once"),
        ("a Background\nb: Left-arm, Right-arm, Glove\n", "line 1 is 'a Background'"),
        ("a,b: Background\nc: Left-arm, Right-arm, Glove\n", "line 1 is 'a,b: Back"),
        ("a (1,2,300): Background\nb: Left-arm, Right-arm, Glove\n", "line 1"),
        ("a: Background, Left-arm, Right-arm, Glove\nb:\n", "maps no class to 'b'"),
        ("a: Background, Left-arm, Right-arm, Glove\n", "fewer than 2 target"),
        ("a (1,1,1): Background\nb: Left-arm, Right-arm, Glove\n", "one colour"),
        ("a: Background\nb (9,9,9): Left-arm\nvoid (9,9,9): Right-arm, Glove", "one"),
    ],
)
def test_a_malformed_map_is_one_error_naming_the_file(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as error:
        read(tmp_path, text)
    assert str(tmp_path / "map.txt") in str(error.value)


def test_a_target_class_is_the_argmax_of_its_sources_summed_probabilities():
    logits = np.random.default_rng(0).normal(size=(12, 9, CIHP.num_classes)) * 3
    class_map = read_class_map(COARSE, CIHP)
    found = metrics.upsample_argmax(np.float32(logits), (12, 9), class_map.matrix)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    sources = [np.flatnonzero(class_map.lookup[:20] == t) for t in range(7)]
    summed = np.stack([probabilities[..., ids].sum(-1) for ids in sources], -1)
    np.testing.assert_array_equal(found, summed.argmax(-1))


def test_evaluate_with_a_map_scores_the_mapped_masks_in_the_target_set(tmp_path):
    text = "body: Left-arm, Right-arm\nrest: Background\nvoid: Glove"
    class_map = read(tmp_path, text)
    mask = np.array([[0, 0, 0, 1, 1], [3, 3, VOID, 2, 0]], np.uint8)  # ids of FOUR
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.new("RGB", (5, 2)).save(tmp_path / "photo.png")
    pairs = files.check_pairs([(tmp_path / "photo.png", tmp_path / "mask.png")], FOUR)
    mapped = files.check_pairs(pairs, FOUR, class_map)
    # The most likely class is Background, but the two arms together outweigh it.
    model, target = Constant([1.0, 0.8, 0.8, 0.0]), class_map.target
    scores, matrix, _ = tutorial.evaluate(
        [model], mapped, target, None, class_map.matrix
    )
    assert scores["classes"]["names"] == ["body", "rest"]
    # Truth: body on 3 pixels (the arms), rest on 4, Glove and void on none;
    # every pixel predicted body.
    np.testing.assert_array_equal(matrix, [[3, 0], [4, 0]])


@pytest.mark.slow
def test_predict_with_a_map_writes_target_ids_colours_and_masks(
    tiny_run, example_photo, tmp_path
):
    argv = ["--predict", example_photo, "--model", tiny_run / "model.keras"]
    argv += ["--class-map", COARSE, "--mask-classes", "head"]
    run_tutorial(*argv, "--output-dir", tmp_path)
    ids = Image.open(tmp_path / "person_3_ids.png")
    target = read_class_map(COARSE, CIHP).target
    assert ids.getpalette()[: 3 * 7] == list(np.ravel(target.colors))
    assert np.asarray(ids).max() < 7
    head = np.asarray(Image.open(tmp_path / "person_3_class-head.png"))
    np.testing.assert_array_equal(head, 255 * (np.asarray(ids) == 1))


@pytest.mark.slow
def test_a_parser_with_a_map_agrees_with_predict_and_carries_the_targets(
    tiny_run, tmp_path
):
    flags = ["--model", tiny_run / "model.keras", "--class-map", COARSE]
    run_tutorial("--export", "onnx_parser", *flags, "--output-dir", tmp_path)
    photo = person(tmp_path / "photo.png", 640, 480)
    run_tutorial("--predict", photo, *flags, "--output-dir", tmp_path)
    expected = np.asarray(Image.open(tmp_path / "photo_ids.png"))
    graph = onnx.load(tmp_path / "parser.onnx")
    names = {p.key: p.value for p in graph.metadata_props}["class_names"]
    assert json.loads(names)[1:3] == ["head", "upper-body"]
    session = onnxruntime.InferenceSession(str(tmp_path / "parser.onnx"))
    rgb = np.asarray(Image.open(photo).convert("RGB"))[None]
    assert (session.run(None, {"photo": rgb})[0][0] == expected).mean() >= 0.999


@pytest.mark.slow
def test_training_with_a_map_learns_the_target_classes(toy_root, tmp_path):
    run_tutorial(*run_args(toy_root, tmp_path, "--class-map", PERSON))
    model, classes = cli.load_model(tmp_path / "model.keras", "--model")
    assert classes.names == ("background", "person")
    assert model.output_shape[-1] == 2
    assert "| 1 | person |" in (tmp_path / "README.md").read_text()
    # Scored again on its data, mapped as in training: the map is already in it.
    assert read_class_map(PERSON, classes).matrix is None
    flags = ["--data-dir", toy_root, "--class-map", PERSON, "--output-dir", tmp_path]
    counts = ["--num-train-images", 8, "--num-val-images", 4]  # as run_args
    run_tutorial("--evaluate", tmp_path / "model.keras", *flags, *counts)
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert evaluation["classes"]["names"] == ["background", "person"]
    assert evaluation["per_class_iou"]["person"] is not None  # its masks hold it


def test_a_model_is_scored_on_data_labelled_in_the_targets_of_its_map(
    tiny_run, tmp_path
):
    data = generate(tmp_path / "parts", 4, num_val_images=0, layout="folder")
    lines = [  # CIHP's classes merged into the toy set's body parts
        f"{name} {color}: "
        + ", ".join(CIHP.names[i] for i in np.flatnonzero(TO_PARTS == j))
        for j, (name, color) in enumerate(zip(PARTS.names, PARTS.colors))
    ]
    (tmp_path / "parts.txt").write_text("\n".join(lines) + "\n")
    flags = ["--data-dir", data, "--class-map", tmp_path / "parts.txt"]
    counts = ["--num-train-images", 2, "--num-val-images", 2]
    argv = ["--evaluate", tiny_run / "model.keras", *flags, *counts]
    run_tutorial(*argv, "--output-dir", tmp_path)
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert evaluation["classes"]["names"] == list(PARTS.names)
    assert len(evaluation["per_image"]) == 2


def test_a_logits_export_with_a_map_is_refused(capsys, tmp_path):
    argv = ["--export", "onnx", "--class-map", PERSON, "--model", tmp_path / "m.keras"]
    fails_with(capsys, argv, "--class-map goes into the parser exports")


def test_the_demo_shows_the_target_classes(tiny_run, example_photo):
    segmenter = demo.Segmenter(tiny_run / "model.keras", class_map=PERSON)
    assert segmenter.classes.names == ("background", "person")
    overlay, _, legend, _, download = segmenter(example_photo, ["person"])
    assert np.asarray(Image.open(download)).max() in (0, 255)
    assert "person" in legend and "Face" not in legend
