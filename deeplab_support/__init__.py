"""What the DeepLabV3+ tutorial needs that is not DeepLabV3+ itself.

`cli` (flags, modes, one `error:` line per user mistake), `datasets` (layouts on
disk, the CIHP download, the synthetic set), `files` (checking and reading images,
masks and weights), `classes` (class tables), `runs` (the output folder, training
callbacks, resume, reports), `metrics` (scores and their plots), `devices`
(precision, data parallelism), `export`, `card` (the model card) and `notebook`
(the `.py` to `.ipynb` conversion). Each raises `UserError` for what the user can
fix.
"""

import os
import sys
import time
import warnings


def _import_tensorflow_quietly():
    """Import TensorFlow once with its C++ start-up log lines silenced.

    TensorFlow's C++ logs go straight to file descriptor 2 at import time and
    ignore TF_CPP_MIN_LOG_LEVEL, so they would stand before every error message.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _leave_the_gpu_to_the_backend():
    """On JAX or PyTorch, TensorFlow only runs tf.data, on the CPU: hide the GPUs
    from it, or its GPU build would take their memory first."""
    import keras
    from tensorflow import config as tf_config

    if keras.backend.backend() != "tensorflow":
        try:
            tf_config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow has started already; too late to hide
            pass


_import_tensorflow_quietly()
_leave_the_gpu_to_the_backend()
# JAX keeps numbers in 32 bits unless JAX_ENABLE_X64 is set, and warns at every
# 64-bit variable Keras asks for (its step counters).
warnings.filterwarnings("ignore", "Explicitly requested dtype (int|float)64")


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def in_terminal():
    """Whether output goes to a terminal, where a progress bar redraws in place."""
    return sys.stdout.isatty()


def progress_bar(total, unit):
    """Keras's progress bar where it redraws in place; in a log, a plain count."""
    import keras

    notebook = type(sys.stdout).__module__.startswith("ipykernel")  # a live cell
    if in_terminal() or notebook:
        return keras.utils.Progbar(total, unit_name=unit)
    return ProgressCount(total, unit)


class ProgressCount:
    """A line '120/5000 images' every 10 seconds, and one at the end."""

    def __init__(self, total, unit, every=10.0):
        self.total, self.unit, self.every = total, unit, every
        self.done, self.last = 0, time.monotonic()

    def add(self, count):
        self.done += count
        if self.done >= self.total or time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(f"  {self.done}/{self.total} {self.unit}s", flush=True)
