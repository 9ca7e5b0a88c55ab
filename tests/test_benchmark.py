"""The benchmarks run end to end and report sane, complete numbers (never how fast)."""

import json
import math
import os

import keras
import pytest

from benchmarks import gpu_check, train_throughput, tta
from conftest import ROOT, TINY, run_python
from deeplab_support import export

TIMED = ["compile_seconds", "images_per_second", "step_ms", "tflops"]
PIPELINE = [f"pipeline_{n}_images_per_second" for n in ["first_epoch", "cached"]]
KEYS = {"backend", "device", "image_size", "batch_size", "precision", "order"}
KEYS |= {"jit_compile", "forward_gflop_per_image", "train_gflop_per_image"}
KEYS |= {*TIMED, *PIPELINE, "input_bound"}


@pytest.fixture(scope="module")
def records():
    """Run the smallest useful benchmark once (on torch: no compile wait)."""
    flags = "--image-size 64 --batch-size 2 --order both --warmup-steps 1 "
    flags += "--steps 1 --windows 2 --pipeline-images 8"
    # As the README writes it: no --data-dir.
    script = ROOT / "benchmarks" / "train_throughput.py"
    done = run_python(script, *flags.split(), timeout=600, KERAS_BACKEND="torch")
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
def test_prints_one_complete_line_per_order_of_positive_finite_numbers(records):
    assert [r["order"] for r in records] == ["original", "rewrite"]
    for record in records:
        assert set(record) == KEYS and isinstance(record["input_bound"], bool)
        assert (record["image_size"], record["batch_size"]) == (64, 2)
        for key in TIMED + PIPELINE + ["train_gflop_per_image"]:
            assert math.isfinite(record[key]) and record[key] > 0, key


@pytest.mark.slow
def test_rewrite_order_does_fewer_flops_than_original(records):
    original, rewrite = records
    assert rewrite["train_gflop_per_image"] < original["train_gflop_per_image"]


@pytest.mark.slow
def test_pipeline_is_measured_once_for_all_orders(records):
    original, rewrite = records
    for key in PIPELINE + ["backend", "device", "precision"]:
        assert original[key] == rewrite[key], key


def test_flop_counter_counts_each_convolution_once_nested_or_dilated():
    inner_input = keras.Input(shape=(8, 8, 2))
    dilated = keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same")
    inner = keras.Model(inner_input, dilated(inner_input))
    inputs = keras.Input(shape=(8, 8, 2))
    pooled = keras.layers.MaxPooling2D()(inner(inputs))  # 4x4x4, not counted
    model = keras.Model(inputs, keras.layers.Conv2D(5, 1)(pooled))
    expected = 2 * 8 * 8 * 3 * 3 * 2 * 4 + 2 * 4 * 4 * 1 * 1 * 4 * 5
    assert train_throughput.conv_flops(model) == expected


def test_bad_flags_exit_with_a_usage_error(capsys):
    with pytest.raises(SystemExit) as raised:
        train_throughput.parse_args(["--image-size", "100"])
    assert raised.value.code == 2
    assert "multiple of 16" in capsys.readouterr().err


def test_refuses_a_data_dir_that_holds_other_files(tmp_path, capsys):
    (tmp_path / "thesis.txt").write_text("not toy images")
    with pytest.raises(SystemExit):
        train_throughput.parse_args(["--data-dir", str(tmp_path)])
    assert "choose an empty or new folder" in capsys.readouterr().err
    assert (tmp_path / "thesis.txt").exists()


@pytest.mark.slow
def test_the_gpu_check_prints_every_line_and_skips_gpu_steps_without_a_gpu(tmp_path):
    fake = tmp_path / "nvidia-smi"  # a GPU that no backend here can see
    fake.write_text('#!/bin/sh\n[ "$1" = -L ] && echo "GPU 0: NVIDIA H100" || echo 7\n')
    fake.chmod(0o755)
    path = f"{tmp_path}:{os.environ['PATH']}"
    done = run_python(ROOT / "benchmarks" / "gpu_check.py", timeout=600, PATH=path)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"step": "gpus", "nvidia_smi": ["GPU 0: NVIDIA H100"]}
    seen = {line["backend"]: line for line in lines if line["step"] == "devices"}
    assert set(seen) == {"tensorflow", "jax", "torch"}
    assert all(line["peak_gpu_memory_mib"] == 7 for line in seen.values())
    gpu_steps = [line for line in lines if line["step"] in ("train", "quick")]
    assert len(gpu_steps) == 10  # nine training configurations and the quick start
    assert all("sees no GPU" in line["skipped"] for line in gpu_steps)


@pytest.mark.slow
def test_a_gpu_check_training_line_carries_the_benchmark_s_figures(
    monkeypatch, tmp_path, capsys
):
    # On the CPU, as if PyTorch saw a GPU: one small configuration.
    monkeypatch.setattr(gpu_check, "IMAGE_SIZE", 64)
    monkeypatch.setattr(gpu_check, "PIPELINE_IMAGES", 8)
    monkeypatch.setattr(gpu_check, "TRAIN", [("torch", 2, "float32", "rewrite")])
    deadline = gpu_check.time.monotonic() + 600
    gpu_check.train({"torch"}, deadline, tmp_path / "toy")
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert "error" not in line and "skipped" not in line, line
    assert line["images_per_second"] > 0 and line["step_ms"] > 0
    assert line["pipeline_cached_images_per_second"] > 0
    assert line["device"].startswith("cpu")


@pytest.mark.slow
def test_the_mean_iou_benchmark_counts_every_pixel_and_times_both_metrics():
    done = run_python(ROOT / "benchmarks" / "mean_iou.py", KERAS_BACKEND="torch")
    ours, theirs = [json.loads(line) for line in done.stdout.splitlines()]
    assert (ours["metric"], theirs["metric"]) == ("ours", "keras")
    assert ours["count_of_16781312"] == 16781312 and ours["pixels"] == 16 * 512 * 512
    assert theirs["pixels"] == 65536  # Keras's loops in Python on PyTorch
    assert ours["seconds"] > 0 and theirs["seconds"] > 0


@pytest.mark.slow
def test_the_quick_start_benchmark_prints_a_line_and_a_table_row_per_seed(tmp_path):
    # As the README writes it (`--layout voc`), with the run cut to a tiny one.
    command = [ROOT / "benchmarks" / "quick_start.py"]
    command += ["--layout", "voc", "--seeds", "7", "--loss", "dice", "--aspect", "2"]
    done = run_python(*command, *TINY, TMPDIR=str(tmp_path))  # its set goes there
    row = json.loads(done.stdout.splitlines()[0])
    assert row["seed"] == 7 and row["wall_s"] >= row["first_epoch_line_s"] > 0
    assert row["loss"] == "dice" and 0 <= row["val_mean_iou"] <= 1
    assert "| dice | 7 | " in done.stdout
    assert "synthetic voc set of aspect 2" in done.stdout


def test_the_quick_start_benchmark_passes_on_the_run_s_own_error(tmp_path):
    command = [ROOT / "benchmarks" / "quick_start.py", "--loss", "bogus"]
    done = run_python(*command, exit_code=2, TMPDIR=str(tmp_path))
    assert done.stderr.startswith("error: argument --loss: invalid choice: 'bogus'")


@pytest.mark.slow
def test_the_latency_benchmark_reports_every_format(tmp_path):
    script = ROOT / "benchmarks" / "export_latency.py"
    # As the README writes it, at a tiny size.
    flags = ["--image-size", "64", "--repeats", "1"]
    done = run_python(script, *flags, timeout=600, TMPDIR=str(tmp_path))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    rows = {row["runtime"]: row for row in map(json.loads, lines)}
    assert set(rows) == {"keras", *export.FORMATS}
    assert all(row["size_mb"] > 0 for row in rows.values())
    for fmt in ["onnx", "litert"]:  # float32 graphs: Keras's own classes
        assert rows[fmt]["same_class"] >= 0.999 and rows[fmt]["ms"] > 0
    assert rows["litert_quantized"]["size_mb"] < rows["litert"]["size_mb"] / 3
    assert not list(tmp_path.rglob("*.onnx"))  # gone with its temporary folder


@pytest.mark.slow
def test_the_tta_benchmark_scores_four_ways(tiny_run, toy_root, capsys):
    flags = ["--data-dir", toy_root, "--num-train-images", 12, "--num-val-images", 4]
    argv = ["--evaluate", tiny_run / "model.keras", *flags, "--tta-scales", "0.5,1"]
    tta.main([str(a) for a in argv])
    out = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in out if line.startswith("{")]
    ways = [(row["scales"], row["flip"]) for row in rows]
    assert ways == [("1", False), ("1", True), ("0.5,1", False), ("0.5,1", True)]
    assert all(0 <= row["mean_iou"] <= 1 and row["ms_per_image"] > 0 for row in rows)
