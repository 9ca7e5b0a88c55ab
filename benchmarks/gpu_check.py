"""Measure a GPU in one call: every figure of the README's GPU table, as JSON lines.

    python benchmarks/gpu_check.py                # about 8 minutes at most
    python benchmarks/gpu_check.py --budget 300   # fewer steps, each still whole

Run it from the project root. Each step runs in a subprocess of its own under its
own timeout, so one that fails or hangs prints its line and the next goes on:

1. `gpus`: what `nvidia-smi -L` lists.
2. `devices`: the devices each installed backend sees (TensorFlow, JAX, PyTorch).
3. `train`: `benchmarks/train_throughput.py` at 512x512, batch 16 and 32, float32
   and mixed_bfloat16, on JAX and on TensorFlow, where the backend sees a GPU: the
   tutorial's model, keras-io's beside it once, and the tf.data pipeline's own rate.
4. `quick`: `python deeplabv3_plus.py --quick` on JAX: wall time and mean IoU.

Every step's line carries the peak GPU memory that nvidia-smi showed while it ran
(JAX allocates as it goes here, instead of taking 75% of the GPU at start). A GPU
step whose backend sees no GPU, or that the budget leaves no time for, prints a
line with `skipped` and the reason. Progress goes to stderr.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET = 480  # seconds for the whole check; the lent machine's call allows 600
IMAGE_SIZE = 512  # the tutorial's input side
# backend -> code that prints the kinds of device it sees, as JSON
SEES = {
    "tensorflow": "from tensorflow import config as c; "
    "print(json.dumps([d.device_type for d in c.list_physical_devices()]))",
    "jax": "import jax; print(json.dumps([d.platform for d in jax.devices()]))",
    "torch": "import torch; print(json.dumps(['cpu'] + ['gpu'] * "
    "torch.cuda.device_count()))",
}
# backend, batch size, precision, model ("original": keras-io's), fastest first
TRAIN = [
    ("jax", 16, "mixed_bfloat16", "rewrite"),
    ("jax", 16, "mixed_bfloat16", "original"),
    ("jax", 32, "mixed_bfloat16", "rewrite"),
    ("jax", 16, "float32", "rewrite"),
    ("jax", 32, "float32", "rewrite"),
    ("tensorflow", 16, "mixed_bfloat16", "rewrite"),
    ("tensorflow", 32, "mixed_bfloat16", "rewrite"),
    ("tensorflow", 16, "float32", "rewrite"),
    ("tensorflow", 32, "float32", "rewrite"),
]
PIPELINE_IMAGES = 256  # toy images for the tf.data rate, measured with the first


def log(message):
    """Progress on stderr, so stdout holds only JSON lines."""
    print(message, file=sys.stderr, flush=True)


class MemoryPeak(threading.Thread):
    """Poll nvidia-smi's memory.used (MiB, summed over GPUs) until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = None, threading.Event()

    def run(self):
        while not self.done.is_set():
            used = nvidia_smi(
                "--query-gpu=memory.used", "--format=csv,noheader,nounits"
            )
            try:
                total = sum(int(line) for line in used.split())
                self.peak = max(self.peak or 0, total)
            except ValueError:  # no GPU, or no answer
                pass
            self.done.wait(0.5)


def nvidia_smi(*flags):
    """What nvidia-smi prints with these flags; "" where it is missing or fails."""
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        done = subprocess.run(
            ["nvidia-smi", *flags], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def run_step(record, command, timeout, env=None):
    """Run one step's command; its stdout, with time, memory and failure noted."""
    sampler = MemoryPeak()
    sampler.start()
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env={**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", **(env or {})},
        )
        output = done.stdout
        if done.returncode:
            record["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:300]
    except subprocess.TimeoutExpired:
        output, record["error"] = "", f"timed out after {timeout} s"
    finally:
        sampler.done.set()
        sampler.join()
    record["seconds"] = round(time.perf_counter() - start, 1)
    record["peak_gpu_memory_mib"] = sampler.peak
    return output


def emit(record):
    """Print one JSON line."""
    print(json.dumps(record), flush=True)


def check_devices(deadline):
    """One line per backend: the device kinds it sees; the backends that see a GPU."""
    with_gpu = set()
    for backend, code in SEES.items():
        record = {"step": "devices", "backend": backend}
        command = [sys.executable, "-c", f"import json; {code}"]
        output = run_step(record, command, min(120, remaining(deadline)))
        seen = json.loads(output.strip().splitlines()[-1]) if output.strip() else []
        record["devices"] = seen
        if {"gpu", "GPU", "cuda"} & set(seen):
            with_gpu.add(backend)
        emit(record)
    return with_gpu


def remaining(deadline):
    """Seconds left of the budget, at least 1."""
    return max(1, int(deadline - time.monotonic()))


def train(with_gpu, deadline, toy_dir):
    """One line per training configuration: images/s, step time, pipeline rate."""
    pipeline = PIPELINE_IMAGES  # measured once: tf.data runs on the CPU anyway
    for backend, batch, precision, order in TRAIN:
        record = dict(
            step="train", backend=backend, batch_size=batch, precision=precision
        )
        record.update(order=order, image_size=IMAGE_SIZE)
        if backend not in with_gpu:
            emit({**record, "skipped": f"{backend} sees no GPU"})
            continue
        if remaining(deadline) < 60:
            emit({**record, "skipped": "the budget is spent"})
            continue
        command = [sys.executable, "benchmarks/train_throughput.py"]
        command += ["--image-size", str(IMAGE_SIZE), "--batch-size", str(batch)]
        command += ["--precision", precision, "--order", order, "--windows", "3"]
        command += ["--pipeline-images", str(pipeline), "--data-dir", str(toy_dir)]
        output = run_step(
            record, command, min(150, remaining(deadline)), {"KERAS_BACKEND": backend}
        )
        lines = [json.loads(x) for x in output.splitlines() if x.startswith("{")]
        keys = ["device", "images_per_second", "step_ms", "compile_seconds", "tflops"]
        keys += ["pipeline_first_epoch_images_per_second"]
        keys += ["pipeline_cached_images_per_second", "input_bound"]
        record.update({k: lines[-1].get(k) for k in keys} if lines else {})
        pipeline = 0 if lines else pipeline
        emit(record)


def quick(with_gpu, deadline):
    """The quick start on JAX: wall time and the mean IoU it reaches."""
    record = {"step": "quick", "backend": "jax"}
    if "jax" not in with_gpu:
        return emit({**record, "skipped": "jax sees no GPU"})
    if remaining(deadline) < 60:
        return emit({**record, "skipped": "the budget is spent"})
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        command = [sys.executable, "deeplabv3_plus.py", "--quick", "--output-dir"]
        run_step(
            record, command + [folder], remaining(deadline), {"KERAS_BACKEND": "jax"}
        )
        metrics = Path(folder) / "metrics.json"
        if metrics.is_file():
            summary = json.loads(metrics.read_text())
            keys = ["val_mean_iou", "full_resolution_mean_iou", "train_seconds"]
            record.update({k: summary.get(k) for k in keys + ["images_per_second"]})
    emit(record)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=int, default=BUDGET, help=f"seconds in all ({BUDGET})"
    )
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget
    emit({"step": "gpus", "nvidia_smi": nvidia_smi("-L").strip().splitlines()})
    with_gpu = check_devices(deadline)
    log(f"backends that see a GPU: {sorted(with_gpu) or 'none'}")
    with tempfile.TemporaryDirectory(prefix="gpu-check-toy-") as toy:
        train(with_gpu, deadline, Path(toy) / "toy")
    quick(with_gpu, deadline)


if __name__ == "__main__":
    main()
