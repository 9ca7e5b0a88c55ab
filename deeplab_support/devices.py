"""Where the tutorial runs: the precision for the hardware (a Keras dtype policy) and
data-parallel training (`keras.distribution` on JAX, MirroredStrategy on TensorFlow).
"""

import contextlib
import functools
import os
import subprocess
from pathlib import Path

import keras

from deeplab_support import UserError, files


def memory_bytes():
    """The machine's physical memory in bytes; None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


CPU_BFLOAT16_FLAGS = ["amx_bf16", "avx512_bf16"]  # in /proc/cpuinfo, best first


def choose_precision(precision):
    """The dtype policy for --precision, and why: for 'auto', bfloat16 where native,
    else float16 on a GPU (Keras then scales the loss), and float32 on a CPU."""
    if precision != "auto":
        return precision, "--precision asked for it"
    kind, capability = accelerator()
    if kind == "gpu" and capability < (8, 0):  # T4, V100; Ampere on has bfloat16
        return "mixed_float16", "this older GPU computes float16, not bfloat16"
    if kind != "cpu":
        return "mixed_bfloat16", f"the {kind.upper()} computes bfloat16 natively"
    native = cpu_bfloat16()  # faster on every backend there (README, *Speed*)
    if native:
        return "mixed_bfloat16", f"the CPU computes bfloat16 natively ({native})"
    return "float32", "the CPU has no native bfloat16 (emulated, it is slower)"


def cpu_bfloat16(cpuinfo="/proc/cpuinfo"):
    """The CPU flag that says it computes bfloat16 natively; None if none does."""
    try:  # the flags are words of its "flags" lines
        words = set(Path(cpuinfo).read_text().split())
    except OSError:  # not Linux: no way to tell, so no bfloat16
        return None
    return next((flag for flag in CPU_BFLOAT16_FLAGS if flag in words), None)


def steps_per_execution(steps):
    """For None: 8 steps per call on a GPU or TPU, which then never waits on Python
    between small steps; 1 on a CPU, which gains nothing, and on PyTorch, whose
    Keras backend runs one step per call."""
    torch = keras.backend.backend() == "torch"
    return steps or (1 if torch or accelerator()[0] == "cpu" else 8)


def accelerator():
    """The backend's first device, cpu, gpu or tpu, and a GPU's compute capability."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        capability = str(getattr(device, "compute_capability", "0.0"))
        return device.platform, tuple(int(v) for v in capability.split(".")[:2])
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return "cpu", (0, 0)
        return "gpu", tuple(torch.cuda.get_device_capability())
    from tensorflow import config as tf_config

    gpus = tf_config.list_physical_devices("GPU")
    if gpus:
        details = tf_config.experimental.get_device_details(gpus[0])
        return "gpu", tuple(details.get("compute_capability", (0, 0)))
    return ("tpu" if tf_config.list_physical_devices("TPU") else "cpu"), (0, 0)


GPU_INSTALL = {  # what to install when the backend cannot see the NVIDIA GPU
    "tensorflow": "pip install -r requirements-gpu.txt",
    "jax": 'pip install "jax[cuda12]"',
    "torch": "pip install torch (a CUDA build, as pytorch.org says)",
}


def warn_if_gpu_unused():
    """One warning line when the machine has an NVIDIA GPU that the backend misses."""
    try:  # `nvidia-smi -L` lists the GPUs that a working driver sees
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):  # no driver, or it hangs
        return
    found = sum(line.startswith("GPU ") for line in listed.stdout.splitlines())
    if listed.returncode or not found or accelerator()[0] != "cpu":
        return
    backend = keras.backend.backend()
    files.warn(
        f"nvidia-smi lists {found} NVIDIA GPU(s), but Keras's {backend} backend sees "
        f"none, so this runs on the CPU; install a GPU build: "
        f"{GPU_INSTALL.get(backend, 'see its install guide')}"
    )


def distribution_scope(distribute, batch_size):
    """Set up data-parallel training over every device, if asked."""
    backend = keras.backend.backend()
    if not distribute or keras.distribution.distribution() is not None:
        return contextlib.nullcontext()
    if backend == "tensorflow":
        return mirrored_strategy().scope()
    if backend != "jax":
        raise UserError(
            f"--distribute is not supported on the {backend} backend; run with "
            "KERAS_BACKEND=jax (or tensorflow), or drop --distribute"
        )
    if os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES"):  # several hosts
        keras.distribution.initialize()  # runs jax.distributed.initialize
    count = len(keras.distribution.list_devices())
    if batch_size % count:
        raise UserError(
            f"--batch-size {batch_size} does not split evenly over {count} devices; "
            f"choose a multiple of {count}"
        )
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    print(f"Data-parallel training over {count} device(s), {batch_size // count} each.")
    return contextlib.nullcontext()


@functools.cache  # one per process
def mirrored_strategy():
    """TensorFlow's data parallelism over the GPUs, else every CPU device configured."""
    from tensorflow import config as tf_config, distribute as tf_distribute

    listed = tf_config.list_logical_devices
    names = [device.name for device in listed("GPU") or listed("CPU")]
    strategy = tf_distribute.MirroredStrategy(names)
    count = strategy.num_replicas_in_sync
    print(f"Data-parallel training over {count} device(s) (MirroredStrategy).")
    return strategy


def pad_batches(dataset, distribute, void=255):
    """Pad each batch to a multiple of the device count with void copies."""
    if not distribute or keras.backend.backend() != "jax":
        return dataset  # TensorFlow's MirroredStrategy splits uneven batches itself
    # JAX splits every batch evenly over the devices; copies of the first image,
    # void and weighted 0, fill it, so every real image is scored once.
    from tensorflow import concat, repeat, shape

    count = len(keras.distribution.list_devices())

    def pad(*batch):  # images, masks, weights
        missing = (-shape(batch[0])[0]) % count
        copies = [repeat(part[:1], missing, axis=0) for part in batch]
        copies[1], copies[2] = copies[1] * 0 + void, copies[2] * 0  # all void
        return tuple(concat(pair, 0) for pair in zip(batch, copies))

    return dataset.map(pad)
