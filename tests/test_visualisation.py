"""Colour masks, overlays and the colormap file."""

import numpy as np
import pytest
from scipy.io import savemat

import deeplabv3_plus as dl
from conftest import Constant, fake_run, resume_args
from deeplab_support import UserError, datasets, runs
from deeplab_support.classes import CIHP

COLORMAP = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255]], dtype=np.uint8)


def test_class_ids_are_painted_with_their_colours():
    mask = np.array([[0, 1], [2, 1]])
    colored = dl.decode_segmentation_masks(mask, COLORMAP)
    assert colored.dtype == np.uint8 and colored.shape == (2, 2, 3)
    np.testing.assert_array_equal(colored[1, 0], [0, 128, 255])
    np.testing.assert_array_equal(colored[0, 1], [255, 0, 0])


def test_overlay_blends_35_percent_image_with_65_percent_mask():
    image = np.full((2, 2, 3), 200, dtype=np.uint8)
    colored = np.full((2, 2, 3), 100, dtype=np.uint8)
    overlay = dl.get_overlay(image, colored)
    np.testing.assert_array_equal(overlay, np.full((2, 2, 3), 135))


def test_colormap_is_scaled_to_full_brightness(tmp_path):
    palette = np.array(CIHP.colors)[::-1]  # not the built-in colours
    savemat(tmp_path / "human_colormap.mat", {"colormap": palette / 255})
    colormap = datasets.cihp_colors(tmp_path / "human_colormap.mat")
    np.testing.assert_array_equal(colormap, palette)


def test_missing_colormap_falls_back_to_the_cihp_palette(tmp_path):
    colormap = np.asarray(datasets.cihp_colors(tmp_path / "human_colormap.mat"))
    assert colormap.shape == (20, 3)
    assert colormap[13].tolist() == [0, 0, 255]  # Face, as in CIHP's own file


@pytest.mark.parametrize(
    "content",
    [{"colormap": np.ones((5, 3))}, {"colormap": np.full((20, 3), 100.0)}, {"x": 1}],
)
def test_a_malformed_colormap_is_an_error_saying_to_delete_it(tmp_path, content):
    path = tmp_path / "human_colormap.mat"
    savemat(path, content)
    with pytest.raises(UserError, match="human_colormap.mat.*[Dd]elete"):
        datasets.cihp_colors(path)


def test_the_curves_of_a_one_epoch_run_show_its_scores_at_epoch_1(
    tmp_path, monkeypatch
):
    output_dir = fake_run(tmp_path / "out", epochs_done=1)
    history = "epoch,loss,accuracy,mean_iou,val_loss,val_accuracy,val_mean_iou\n"
    (output_dir / "history.csv").write_text(history + "0,1.5,0.5,0.2,1.7,0.4,0.1\n")
    figures = []
    monkeypatch.setattr(runs, "save_figure", lambda figure, *_: figures.append(figure))
    runs.Run(resume_args(output_dir), output_dir).plot_history()
    for ax in figures[0].axes:
        assert all(line.get_marker() == "o" for line in ax.get_lines())
        assert [tick for tick in ax.get_xticks() if 0.5 < tick < 1.5] == [1]


PREDICTS_HAIR = Constant(np.eye(CIHP.num_classes)[2])  # id 2, on every pixel


def test_the_prediction_figure_names_the_colour_of_each_class_shown():
    images, masks = np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 1), np.uint8)
    masks[0, :2], masks[1, :2] = 5, CIHP.void  # Upper-clothes, and void: no class
    figure = dl.plot_predictions(images, masks, CIHP, PREDICTS_HAIR, "Train")
    key = figure.legends[0]
    names = [text.get_text() for text in key.get_texts()]
    assert names == ["Background", "Hair", "Upper-clothes"]
    hair = key.legend_handles[1].get_facecolor()[:3]
    assert np.allclose(hair, CIHP.palette()[2] / 255)


def test_the_prediction_figure_shows_void_where_the_truth_is_void():
    images, masks = np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 1), np.uint8)
    masks[0, :, 4:] = CIHP.void  # as --keep-aspect pads a tall photo
    figure = dl.plot_predictions(images, masks, CIHP, PREDICTS_HAIR, "Val")
    shown = figure.axes[2].get_images()[0].get_array()  # the prediction panel
    assert (shown[:, 4:] == CIHP.void_color).all()
    assert (shown[:, :4] == CIHP.palette()[2]).all()  # Hair elsewhere
