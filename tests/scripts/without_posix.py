"""Run deeplabv3_plus.py as on Windows: no fcntl, and no symbolic links.

Usage: [STOP_IN_EPOCH=N:SIGNAL] python without_posix.py [tutorial flags]

With STOP_IN_EPOCH (say 2:SIGTERM), the run sends itself that signal after the
first step of epoch N (counted from 1), as a scheduler or Ctrl-C would mid-epoch,
at the same point on every machine.
"""

import os
import runpy
import signal
import sys
from pathlib import Path

import keras


def no_links(*args, **kwargs):
    """What os.symlink and os.readlink do without the privilege on Windows."""
    raise OSError(1314, "A required privilege is not held by the client")


class StopInEpoch(keras.callbacks.Callback):
    """Signal this process after the first training step of one epoch."""

    def __init__(self, epoch, signum):
        super().__init__()
        self.epoch, self.signum, self.current = epoch, signum, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 0:
            os.kill(os.getpid(), self.signum)


def stop_in_epoch(epoch, signum):
    """Make every fit of this process also run StopInEpoch."""
    fit = keras.Model.fit

    def fit_and_stop(model, *args, callbacks=(), **kwargs):
        callbacks = [*callbacks, StopInEpoch(epoch, signum)]
        return fit(model, *args, callbacks=callbacks, **kwargs)

    keras.Model.fit = fit_and_stop


# Ctrl-C raises KeyboardInterrupt, as in a terminal, even where the tests were
# started in the background, which makes a shell ignore SIGINT in its children.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.modules["fcntl"] = None  # import fcntl now raises ImportError
os.symlink = os.readlink = no_links
if os.environ.get("STOP_IN_EPOCH"):
    epoch, name = os.environ["STOP_IN_EPOCH"].split(":")
    stop_in_epoch(int(epoch), signal.Signals[name])
tutorial = Path(__file__).resolve().parents[2] / "deeplabv3_plus.py"
sys.argv = [str(tutorial), *sys.argv[1:]]
runpy.run_path(str(tutorial), run_name="__main__")
