"""The model card: README.md beside model.keras, in the format model hubs read."""

import json

from huggingface_hub import ModelCard

from deeplab_support.classes import CIHP


def test_a_run_writes_a_card_with_its_scores_classes_and_settings(tiny_run):
    card = ModelCard.load(tiny_run / "README.md")  # as the Hugging Face Hub reads it
    summary = json.loads((tiny_run / "metrics.json").read_text())
    assert card.data.library_name == "keras"
    assert card.data.pipeline_tag == "image-segmentation"
    mean_iou = card.data.eval_results[0]
    assert mean_iou.metric_type == "mean_iou" and mean_iou.dataset_split == "validation"
    assert mean_iou.metric_value == round(summary["full_resolution_mean_iou"], 4)
    for index, name in enumerate(CIHP.names):
        assert f"| {index} | {name} | {CIHP.colors[index]} |" in card.text
    assert "| input size | 64 x 64 px |" in card.text and "| epochs | 1 |" in card.text
    assert "![Predictions on validation images](predictions_val.png)" in card.text
    assert (tiny_run / "predictions_val.png").is_file()
