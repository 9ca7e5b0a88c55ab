"""One tiny training run through main(), and what it leaves behind."""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
from PIL import Image

from conftest import ROOT
from data import toy_people

OUTPUTS = ["model.keras", "best_model.keras", "history.csv", "training_curves.png",
           "predictions_train.png", "predictions_val.png", "metrics.json",
           "evaluation.json", "per_class_iou.png", "confusion_matrix.png"]  # fmt: skip


def test_a_run_writes_every_output(tiny_run):
    missing = [name for name in OUTPUTS if not (tiny_run / name).is_file()]
    assert not missing
    for name in OUTPUTS:
        if name.endswith(".png"):
            assert min(Image.open(tiny_run / name).size) > 100


def test_metrics_json_reports_scores_per_class_and_speed(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for key in ["val_loss", "val_accuracy", "val_mean_iou", "train_seconds"]:
        assert np.isfinite(metrics[key])
    assert 0 <= metrics["val_accuracy"] <= 1 and metrics["images_per_second"] > 0
    assert list(metrics["per_class_iou"]) == list(toy_people.CLASS_NAMES)


def test_history_has_one_row_per_epoch(tiny_run):
    with open(tiny_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["1"]
    assert {"loss", "accuracy", "mean_iou", "val_loss", "val_mean_iou"} <= set(rows[0])


def test_saved_model_loads_and_predicts_every_class_score(tiny_run):
    model = keras.saving.load_model(tiny_run / "model.keras")
    logits = model.predict_on_batch(np.zeros((1, 64, 64, 3), dtype="float32"))
    assert np.asarray(logits).shape == (1, 64, 64, 20)


def test_nothing_left_half_written(tiny_run):
    leftovers = [p.name for p in tiny_run.rglob("*") if ".tmp-" in p.name]
    assert not leftovers


def test_importing_the_script_does_nothing(tmp_path):
    before = sorted(p.name for p in (ROOT / "data").iterdir())
    code = "import sys; sys.argv = ['x', '--bogus']; import deeplabv3_plus; print('ok')"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "ok"
    assert not list(tmp_path.iterdir())
    assert sorted(p.name for p in (ROOT / "data").iterdir()) == before
