"""What the DeepLabV3+ tutorial needs that is not DeepLabV3+ itself: the command line
(`cli`), data sets (`datasets`, `classes`, `files`), the run's folder (`runs`,
`metrics`, `card`), `devices`, `export` and `notebook`. Each raises `UserError` for
what the user can fix; importing it keeps TensorFlow's start-up lines quiet.
"""

import contextlib
import logging
import os
import sys
import time
import warnings


def _import_tensorflow_quietly():
    """Import TensorFlow with its C++ start-up lines, which go straight to file
    descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says, kept off every error message."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
    """Hide the GPUs from TensorFlow where it only runs tf.data; it would grab them."""
    import keras
    from tensorflow import config as tf_config

    if keras.backend.backend() != "tensorflow":
        with contextlib.suppress(RuntimeError):  # TensorFlow has started: too late
            tf_config.set_visible_devices([], "GPU")


try:
    _import_tensorflow_quietly()  # and Keras, which TensorFlow imports
except ValueError as error:  # KERAS_BACKEND names no backend: one line, as every error
    print(
        f"error: {error}; set KERAS_BACKEND to jax, tensorflow or torch",
        file=sys.stderr,
    )
    raise SystemExit(2) from None
except KeyboardInterrupt:  # Ctrl-C in the seconds TensorFlow takes to load
    print("\nInterrupted.", file=sys.stderr)
    raise SystemExit(130) from None
_leave_the_gpu_to_the_backend()
# Each --tta-scales size is a model of its own, its predict step traced once; from
# the fifth, TensorFlow takes that for retracing and logs a warning.
logging.getLogger("tensorflow").addFilter(lambda r: "retracing" not in r.getMessage())
# JAX (32-bit unless JAX_ENABLE_X64) warns at each 64-bit step counter of Keras.
warnings.filterwarnings("ignore", "Explicitly requested dtype (int|float)64")


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def in_terminal():
    """Whether output goes to a terminal, where a progress bar redraws in place."""
    return sys.stdout.isatty()


def progress_bar(total, unit):
    """Keras's progress bar where it redraws in place; in a log, a plain count."""
    import keras

    # In a log Keras's bar writes escape codes (verbose=1) or only the end (2).
    if in_terminal() or type(sys.stdout).__module__.startswith("ipykernel"):
        return keras.utils.Progbar(total, unit_name=unit)  # or a live notebook cell
    return ProgressCount(total, unit)


class ProgressCount:
    """A line '120/5000 images' every 10 seconds, and one at the end."""

    def __init__(self, total, unit, every=10.0):
        self.total, self.unit, self.every = total, unit, every
        self.done, self.last = 0, time.monotonic()

    def add(self, count):
        self.done += count
        if self.done >= self.total or time.monotonic() >= self.last + self.every:
            self.last = time.monotonic()
            print(f"  {self.done}/{self.total} {self.unit}s", flush=True)
