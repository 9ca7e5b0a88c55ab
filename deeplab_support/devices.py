"""Where the tutorial runs: precision for the hardware, and data-parallel scale-out.

Both use Keras's own APIs (dtype policies and `keras.distribution`), so the same
code serves TensorFlow, JAX and PyTorch.
"""

import contextlib
import os
import shutil
import subprocess
import sys

import keras

from deeplab_support import UserError


def memory_bytes():
    """The machine's physical memory in bytes; None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


CPU_BFLOAT16_FLAGS = ["amx_bf16", "avx512_bf16"]  # in /proc/cpuinfo, best first


def choose_precision(precision):
    """The dtype policy for --precision, and why: for 'auto', bfloat16 where the
    chip computes it natively, else float16 on a GPU (Keras then scales the loss),
    and float32 on other CPUs."""
    if precision != "auto":
        return precision, "--precision asked for it"
    kind, capability = accelerator()
    if kind == "tpu":
        return "mixed_bfloat16", "a TPU computes bfloat16 natively"
    if kind == "gpu" and capability >= (8, 0):  # Ampere on
        return (
            "mixed_bfloat16",
            f"this GPU ({capability[0]}.{capability[1]}) has bfloat16",
        )
    if kind == "gpu":  # T4, V100
        return "mixed_float16", "this older GPU computes float16, not bfloat16"
    native = cpu_bfloat16()  # faster on every backend there (README, *Speed*)
    if native:
        return "mixed_bfloat16", f"the CPU computes bfloat16 natively ({native})"
    return "float32", "the CPU has no native bfloat16 (emulated, it is slower)"


def cpu_bfloat16(cpuinfo="/proc/cpuinfo"):
    """The CPU flag that says it computes bfloat16 natively; None if none does."""
    try:
        text = open(cpuinfo).read()
    except OSError:  # not Linux: no way to tell, so no bfloat16
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return next((flag for flag in CPU_BFLOAT16_FLAGS if flag in flags), None)


def steps_per_execution(steps):
    """For None: 8 training steps per call on a GPU or TPU, so the device never
    waits on Python between small steps, and 1 on a CPU, which gains nothing."""
    if steps is not None:
        return steps
    return 1 if accelerator()[0] == "cpu" else 8


def accelerator():
    """The kind of the backend's first device (cpu, gpu or tpu) and, for an
    NVIDIA GPU, its compute capability as (major, minor)."""
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


# What to install when the backend cannot see the machine's NVIDIA GPU.
GPU_INSTALL = {
    "tensorflow": "pip install -r requirements-gpu.txt",
    "jax": 'pip install "jax[cuda12]"',
    "torch": "pip install torch (a CUDA build, as pytorch.org says)",
}


def nvidia_gpus():
    """How many NVIDIA GPUs `nvidia-smi -L` lists; 0 without a working driver."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return 0
    try:
        listed = subprocess.run(
            [command, "-L"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    if listed.returncode:
        return 0
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines())


def warn_if_gpu_unused():
    """One warning line when the machine has an NVIDIA GPU that the backend misses."""
    found = nvidia_gpus()
    if not found or accelerator()[0] != "cpu":
        return
    backend = keras.backend.backend()
    print(
        f"warning: nvidia-smi lists {found} NVIDIA GPU(s), but Keras's {backend} "
        f"backend sees none, so this runs on the CPU; install a GPU build: "
        f"{GPU_INSTALL.get(backend, 'see its install guide')}",
        file=sys.stderr,
        flush=True,
    )


_strategies = {}  # one tf.distribute strategy per process, made on first use


def distribution_scope(distribute, batch_size):
    """Set up data-parallel training with Keras's distribution API, if asked."""
    if not distribute or keras.distribution.distribution() is not None:
        return contextlib.nullcontext()
    backend = keras.backend.backend()
    if backend == "jax":
        if os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES"):  # several hosts
            keras.distribution.initialize()  # runs jax.distributed.initialize
        devices = keras.distribution.list_devices()
        if batch_size % len(devices):
            raise UserError(
                f"--batch-size {batch_size} does not split evenly over "
                f"{len(devices)} devices; choose a multiple of {len(devices)}"
            )
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices)
        )
        print(
            f"Data-parallel training over {len(devices)} device(s): "
            f"{batch_size // len(devices)} images each per step."
        )
        return contextlib.nullcontext()
    if backend == "tensorflow":
        from tensorflow import config as tf_config, distribute as tf_distribute

        if "tf" not in _strategies:  # the GPUs; else every CPU device configured
            gpus = tf_config.list_logical_devices("GPU")
            found = gpus or tf_config.list_logical_devices("CPU")
            names = [device.name for device in found]
            _strategies["tf"] = tf_distribute.MirroredStrategy(names)
            count = _strategies["tf"].num_replicas_in_sync
            print(f"Data-parallel training over {count} device(s) (MirroredStrategy).")
        return _strategies["tf"].scope()
    raise UserError(
        f"--distribute is not supported on the {backend} backend; run with "
        "KERAS_BACKEND=jax (or tensorflow), or drop --distribute"
    )


def pad_batches(dataset, distribute):
    """Pad each batch to a multiple of the device count with zero-weight copies.

    JAX splits every batch evenly over the devices, so a last validation batch of
    two images cannot run on four. Copies of the batch's first image fill it, and a
    per-pixel weight of 0 (as on void pixels) keeps them out of the loss, the
    accuracy and the mean IoU, so every real image is scored exactly once.
    """
    if not distribute or keras.backend.backend() != "jax":
        return dataset  # TensorFlow's MirroredStrategy splits uneven batches itself
    from tensorflow import concat, repeat, shape, zeros

    count = len(keras.distribution.list_devices())

    def pad(images, masks, weights):
        missing = (-shape(images)[0]) % count
        padding = zeros([missing, *weights.shape[1:3]], weights.dtype)
        weights = concat([weights, padding], 0)
        images = concat([images, repeat(images[:1], missing, axis=0)], 0)
        masks = concat([masks, repeat(masks[:1], missing, axis=0)], 0)
        return images, masks, weights

    return dataset.map(pad)
