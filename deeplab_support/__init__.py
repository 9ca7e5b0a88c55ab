"""What the DeepLabV3+ tutorial needs that is not DeepLabV3+ itself.

- `cli`: the command line, its modes, and one clear `error:` line for every user
  mistake (exit code 2).
- `files`: downloading CIHP, finding, pairing and checking its files, reading
  photos, masks, colormaps and weights.
- `runs`: the training run in `--output-dir`: a lock, Keras callbacks that back it
  up atomically after every epoch, `--resume`, figures and reports.
- `metrics`: confusion-matrix scores and their plots.
- `devices`: mixed precision and data-parallel training with Keras's own APIs.

Each of them raises `UserError` for problems the user can fix.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""
