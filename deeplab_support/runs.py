"""The output folder and the training run in it.

Every writer (a run, `--evaluate`, `--export`, `--predict`) first `claim`s the
names it will write: that checks the folder, takes its lock and lists the names in
`run.json`, the folder's manifest. Only what a manifest lists is ever deleted or
replaced; every file goes through `atomic_path`, which refuses unclaimed names. A
run keeps `history.csv`, `best_model.keras` and a backup per epoch for `--resume`.
"""

import atexit
import contextlib
import csv
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import statistics
import time
import warnings
from contextlib import contextmanager
from os.path import lexists
from pathlib import Path

import filelock
import keras
import matplotlib
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from deeplab_support import UserError, card, devices, files, in_terminal, metrics
from deeplab_support.classes import save_classes

RUN_FILE = "run.json"  # the run's settings, and the folder's manifest
# Settings that an interrupted run keeps when resumed (--epochs may extend it).
RUN_CONFIG = """data_dir image_size batch_size num_train_images num_val_images
learning_rate lr_schedule augment cache seed quick weights precision val_split
ignore_index tensorboard class_weights class_map freeze_backbone loss
keep_aspect""".split()
BACKUP_FILE = "backup.json"  # names the committed backup-NNN folder and its epoch
BACKUP_WEIGHTS = "model.weights.h5"  # in backup-NNN: weights and optimizer state
# What --evaluate writes; a training run writes them too.
EVALUATION_NAMES = "evaluation.json per_class_iou.png confusion_matrix.png".split()
EVALUATION_NAMES += ["worst_val.png"]
# Every name a training run writes besides its backups; none may be the user's.
OUTPUT_NAMES = [RUN_FILE, BACKUP_FILE, card.CARD, *EVALUATION_NAMES] + """history.csv
model.keras best_model.keras metrics.json training_curves.png predictions_train.png
predictions_val.png""".split()
TENSORBOARD_DIR = "logs"  # --tensorboard: Keras's TensorBoard logs
MADE_BY = "deeplabv3_plus"  # the marker in run.json that says the run is ours
FIX = "choose another --output-dir"  # where a file not ours is in a writer's way
_held_locks = {}  # folder -> held FileLock; the OS releases them at process exit
_claimed = {}  # absolute folder -> the names this process listed in its manifest
_made = {}  # absolute folder whose manifest this process made -> it made the folder


@contextmanager
def atomic_path(path, folder=False, claimed=True):
    """Yield this process's temporary file (or folder) beside `path`, created
    exclusively (nothing is written through a name or link put there); move it into
    place on success. `claimed=False`: a name that the caller has checked is its own."""
    if claimed:
        refuse_unclaimed(path)
    tmp = Path(path).with_name(f".tmp-{os.getpid()}-{Path(path).name}")
    try:
        if folder:
            os.mkdir(tmp)
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            os.close(os.open(tmp, flags, 0o666))  # as open() would, less the umask
    except FileExistsError:
        raise UserError(
            f"{tmp} is in the way of writing {path}; move it away and run again"
        ) from None
    try:
        yield tmp
        if folder:  # os.replace cannot replace a folder: the claimed one goes first
            remove(path)
        os.replace(tmp, path)
    finally:
        remove(tmp)


def refuse_unclaimed(path):
    """Stop a write to a name that is not claimed: it could be the user's file."""
    path = Path(path)
    claimed = _claimed.get(Path(os.path.abspath(path.parent)), ())
    if path.name not in [RUN_FILE, *claimed]:
        raise RuntimeError(f"{path} is written without being claimed; claim it first")


def write_json(path, data):
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def read_backup(output_dir):
    """The committed backup: {"epoch": epochs done, "folder": "backup-NNN"}."""
    path = Path(output_dir) / BACKUP_FILE
    with contextlib.suppress(UserError, ValueError, KeyError, TypeError):
        backup = (
            json.loads(files.read_text(path, "run record")) if lexists(path) else {}
        )
        folder = backup and backup["folder"]
        if backup == {} or int(backup["epoch"]) > 0 and Path(folder).name == folder:
            return backup
    raise UserError(
        f"the backup record {path} is damaged; start again with --overwrite (the "
        "last model is still in model.keras)"
    )


def completed_epochs(output_dir):
    """How many epochs the backup in output_dir holds (0 if none)."""
    return int(read_backup(output_dir).get("epoch", 0))


def read_history(output_dir):
    """The rows of history.csv, one per completed epoch."""
    path = Path(output_dir) / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if None not in row.values()]


def lock(output_dir, fix=FIX):
    """Hold the folder's lock for the rest of the process, or refuse."""
    key = Path(output_dir).resolve()
    if key not in _held_locks:  # a notebook may run its training cell again
        held = filelock.FileLock(lock_file(key), thread_local=False)
        try:
            held.acquire(timeout=0)
        except filelock.Timeout:
            raise UserError(
                f"another run of this project is using {output_dir}; wait for it "
                f"to finish or {fix}"
            ) from None
        _held_locks[key] = held


def release(output_dir):
    """Let go of a folder's lock before the process ends: its writer is done."""
    held = _held_locks.pop(Path(output_dir).resolve(), None)
    if held:
        held.release()


def lock_file(output_dir):
    """A folder's lock file, in the user's cache: the folder holds outputs only."""
    name = hashlib.sha256(os.fsencode(Path(output_dir).resolve())).hexdigest()[:32]
    return files.user_cache_dir("locks") / f"{name}.lock"


def read_run_file(output_dir):
    """The manifest (run.json) in output_dir; an empty one where there is none."""
    path = Path(output_dir) / RUN_FILE
    try:  # through files.read_text: a FIFO is damaged, not hung on
        data = json.loads(files.read_text(path, "run record"))
    except (UserError, ValueError):  # none yet, or damaged
        data = None if lexists(path) else {"made_by": MADE_BY, "config": {}}
    data = {"files": [], "pids": [], **data} if isinstance(data, dict) else {}
    names, pids = data.get("files"), data.get("pids")  # bare names, numeric pids
    bare = isinstance(names, list) and all(
        isinstance(n, str) and n == Path(n).name != ".." for n in names
    )
    numeric = isinstance(pids, list) and all(type(pid) is int for pid in pids)
    valid = data.get("made_by") == MADE_BY and isinstance(data.get("config"), dict)
    if not (valid and bare and numeric):
        raise UserError(
            f"{path} is damaged or was not written by this project, so nothing in "
            f"{output_dir} can be taken as its own; move the folder's files "
            "elsewhere or choose another --output-dir"
        )
    return data


def owned_names(folder):
    """The names the manifest in folder lists; none if it has no run.json of ours."""
    with contextlib.suppress(UserError):  # not ours, or damaged: nothing is ours
        return set(read_run_file(folder)["files"])
    return set()


def write_run_file(output_dir, data):
    """Write run.json, the run's settings and manifest, atomically."""
    write_json(Path(output_dir) / RUN_FILE, {"made_by": MADE_BY, **data})


def refuse_strangers(output_dir, owned, names, writer="a training run", fix=FIX):
    """Stop before writing over any of these names that the project did not make."""
    found = [n for n in names if n not in owned and lexists(Path(output_dir, n))]
    if found:
        more = f" (nor {len(found) - 1} more)" if len(found) > 1 else ""
        raise UserError(
            f"{Path(output_dir, found[0])} was not made by this project{more}, and "
            f"{writer} writes there; move it away or {fix}"
        )


def free_prefix(output_dir, stem, paths, owned, taken, inputs=frozenset()):
    """output_dir/stem, else stem-2, stem-3...: the first prefix whose output files
    (`paths(prefix)`) are neither names taken already (in any case, as macOS and
    Windows compare names), inputs, nor files not ours."""
    prefix, n, taken = Path(output_dir) / stem, 1, {name.casefold() for name in taken}
    while any(
        path.name.casefold() in taken
        or path.resolve() in inputs
        or (lexists(path) and path.name not in owned)
        for path in paths(prefix)
    ):
        n += 1
        prefix = Path(output_dir) / f"{stem}-{n}"
    return prefix


def claim(output_dir, names, writer="a training run", drop=None, config=None, fix=FIX):
    """Own these names in output_dir before writing them: every writer's one way.

    Also deletes what dead processes left half-written, and the names listed
    earlier that `drop(name)` picks; `config` records a training run's settings;
    `fix` says what else to do where a name is taken by a file not ours.
    """
    output_dir, key = Path(output_dir), Path(os.path.abspath(output_dir))
    made = not output_dir.is_dir()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(
            f"--output-dir {output_dir} is a file, not a folder; choose another path"
        ) from None
    except OSError as error:
        raise UserError(
            f"cannot create --output-dir {output_dir} ({error.strerror}); choose a "
            "writable folder"
        ) from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise UserError(
            f"--output-dir {output_dir} is not writable; choose a writable folder"
        )
    lock(output_dir, fix)
    if not lexists(output_dir / RUN_FILE):
        _made.setdefault(key, made)
    data = read_run_file(output_dir)
    refuse_strangers(output_dir, data["files"], names, writer, fix)
    _claimed.setdefault(key, set()).update(names)
    gone = {n for n in data["files"] if drop and n != RUN_FILE and drop(n)}
    ended = [] if os.getpid() in data["pids"] else data["pids"]  # the lock says so
    for name in data["files"]:
        if name in gone:
            remove(output_dir / name)
        for pid in ended:  # what a killed process left half-written
            remove(output_dir / f".tmp-{pid}-{name}")
    listed = [n for n in data["files"] if n not in gone]
    listed += [n for n in names if n not in listed]
    if listed != data["files"] or ended or config is not None:
        listed = [RUN_FILE, *(n for n in listed if n != RUN_FILE)]  # itself, first
        data.update(files=listed, pids=[os.getpid()])
        data["config"] = data["config"] if config is None else config
        write_run_file(output_dir, data)
    return data


@atexit.register
def release_unwritten():
    """At exit: unlist the names this process never wrote (a failed run, a skipped
    photo), so that a file the user later saves under one stays the user's; a
    manifest (and folder) that this process made for nothing goes."""
    for output_dir, names in _claimed.items():
        unwritten = {n for n in names if not lexists(output_dir / n)}
        with contextlib.suppress(OSError, UserError):  # best effort, at exit
            data = read_run_file(output_dir)
            listed = [n for n in data["files"] if n not in unwritten]
            idle = listed == [RUN_FILE] and not data["config"]  # owns nothing
            if idle and output_dir in _made:  # gone, not rewritten
                remove(output_dir / RUN_FILE)
                if _made[output_dir]:
                    os.rmdir(output_dir)  # only if empty
            elif listed != data["files"]:
                write_run_file(output_dir, {**data, "files": listed})
    _claimed.clear()
    _made.clear()


def run_names(args):
    """The names a training run writes: its files and one backup folder an epoch."""
    backups = [f"backup-{epoch:03d}" for epoch in range(1, args.epochs + 1)]
    return OUTPUT_NAMES + backups + ([TENSORBOARD_DIR] if args.tensorboard else [])


def prepare_resume(args, check=None):
    """For --resume, take the interrupted run's settings (`check(args)` refuses a
    hand-edited one before it is used); else refuse to clobber."""
    if args.resume and args.overwrite:
        raise UserError(
            "--resume continues the run in --output-dir and --overwrite replaces it; "
            "pass one of them"
        )
    output_dir, data = Path(args.output_dir), read_run_file(args.output_dir)
    if data["config"] and not (args.resume or args.overwrite):
        raise UserError(
            f"{output_dir} already holds a run; add --resume to continue it, "
            "--overwrite to replace it, or choose another --output-dir"
        )
    if args.resume:
        if not data["config"]:
            raise UserError(
                f"nothing to resume: {output_dir} holds no training run; run again "
                "without --resume"
            )
        config = {k: v for k, v in data["config"].items() if k in RUN_CONFIG}
        for name, value in config.items():  # the run's settings are its own
            given = recorded(name, getattr(args, name))
            if name in args.given and given != recorded(name, value):
                flag = "--" + name.replace("_", "-")
                raise UserError(
                    f"{flag} {getattr(args, name)} conflicts with the run in "
                    f"{output_dir}, which has {flag} {value}; --resume continues a "
                    f"run with its own settings: drop {flag}, or start a new run "
                    "with --overwrite"
                )
        vars(args).update(config)
        if "epochs" not in args.given:  # --epochs may extend the run
            args.epochs = data["config"].get("epochs")
        if check:
            check(args)
        done, backup = completed_epochs(output_dir), read_backup(output_dir)
        weights = output_dir / backup.get("folder", "-") / BACKUP_WEIGHTS
        if done and not weights.is_file():  # the run would silently start afresh
            raise UserError(
                f"the backup in {output_dir} says {done} epoch(s) are done but its "
                f"weights file {weights} is missing; start again with --overwrite"
            )
        # The report is written last; a README.md of the user's says nothing.
        finished = card.CARD in data["files"] and (output_dir / card.CARD).exists()
        if done > args.epochs or done == args.epochs and finished:
            raise UserError(
                f"the run in {output_dir} has already completed {done} epochs; pass "
                f"--epochs larger than {done} to train it further"
            )
        taken = ", ".join(f"{k} {v}" for k, v in config.items() if v is not None)
        print(
            f"Resuming {output_dir} after epoch {done} of {args.epochs}, with {taken}."
        )
    # Checked now, before any work; the run claims the names when training begins.
    refuse_strangers(output_dir, data["files"], run_names(args))


def open_run(args, data_root=None):
    """Claim --output-dir for this training run and return the Run: a new run
    deletes the earlier run's files (not the folder's exports and predictions), a
    resumed one only the backups that were never committed. Without --data-dir,
    the run records `data_root`, the data set found, so --resume reads it again."""
    kept = read_backup(args.output_dir).get("folder") if args.resume else None
    earlier = [] if args.resume else OUTPUT_NAMES + [TENSORBOARD_DIR]

    def drop(name):
        return name in earlier or name.startswith("backup-") and name != kept

    names = RUN_CONFIG + ["epochs"]  # --epochs N too
    config = {k: recorded(k, getattr(args, k)) for k in names}
    config["data_dir"] = recorded("data_dir", args.data_dir or data_root)
    claim(args.output_dir, run_names(args), drop=drop, config=config)
    return Run(args, Path(args.output_dir))


def recorded(name, value):
    """A setting as run.json holds it: a path absolute, found from any folder."""
    paths = ("data_dir", "class_map", "weights")
    if name in paths and value not in (None, "imagenet", "none"):
        return os.path.abspath(value)
    return value


def remove(path):
    """Delete a file, a link (not what it points to) or a folder, if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        Path(path).unlink(missing_ok=True)


class Run:
    """One training run: its callbacks, figures and final report."""

    def __init__(self, args, output_dir):
        self.args, self.dir = args, output_dir
        self.seconds = []  # each epoch's training steps, its validation left out
        self.initial_epoch = completed_epochs(output_dir)  # where --resume goes on
        # Keras's progress bar in a terminal; one line per epoch in a log or notebook.
        self.verbose = 1 if in_terminal() else 2

    def callbacks(self, classes):
        """Keras callbacks that time, log, keep the best model (with the data set's
        class table) and back up every epoch."""
        path = self.dir / "history.csv"
        history = read_history(self.dir)[: completed_epochs(self.dir)]
        if path.exists():  # the rows past the backup are redone
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                if history:  # an empty file makes CSVLogger write the header
                    writer = csv.DictWriter(f, fieldnames=list(history[0]))
                    writer.writeheader()
                    writer.writerows(history)
        best = max((float(row["val_mean_iou"]) for row in history), default=-1.0)
        clock = time.perf_counter
        timer = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: setattr(self, "started", clock()),
            on_test_begin=lambda logs: self.seconds.append(clock() - self.started),
        )
        # raise_error: stop before a NaN epoch can be saved. async_safe: JAX and
        # PyTorch check each step's loss on a side thread instead of making every
        # step wait for it; an error there stops training by the epoch's end.
        nan_stop = keras.callbacks.TerminateOnNaN(raise_error=True)
        nan_stop.async_safe = True
        # Weights gone bad can train on a finite loss yet predict NaN: stop there too.
        val_stop = keras.callbacks.LambdaCallback(on_epoch_end=refuse_nan_validation)
        logs = keras.callbacks.TensorBoard(str(self.dir / TENSORBOARD_DIR))
        return [
            timer,
            nan_stop,
            val_stop,  # before the log and the backup keep the epoch
            keras.callbacks.CSVLogger(str(path), append=True),
            *([logs] if self.args.tensorboard else []),
            Backup(self.dir, classes, best),  # last: it commits the epoch
        ]

    def save_figure(self, figure, name):
        """Save a figure as a PNG in the run's folder."""
        save_figure(figure, self.dir / name, self.args.show)

    def plot_history(self):
        """Plot loss, accuracy and mean IoU per epoch, train against validation."""
        history = read_history(self.dir)
        epochs = [int(row["epoch"]) + 1 for row in history]
        figure, axes = plt.subplots(1, 3, figsize=(15, 4))
        for ax, metric in zip(axes, ["loss", "accuracy", "mean_iou"]):
            # A dot per epoch (a one-epoch run shows too), ticks at whole epochs.
            for key, label in [(metric, "train"), (f"val_{metric}", "validation")]:
                values = [float(row[key]) for row in history]
                ax.plot(epochs, values, marker="o", label=label)
            ax.set(title=metric.replace("_", " "), xlabel="epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.legend()
        self.save_figure(figure, "training_curves.png")

    def timing(self, num_train):
        """Seconds spent in training steps, and images per second, in the epochs
        this process trained (None where a resumed run only wrote its report)."""
        steady = self.seconds[1:] or self.seconds  # the first epoch compiles
        if not steady:
            return dict(train_seconds=None, images_per_second=None)
        images = num_train // self.args.batch_size * self.args.batch_size
        seconds, rate = sum(self.seconds), images / statistics.median(steady)
        return dict(train_seconds=round(seconds, 2), images_per_second=round(rate, 2))

    def report(self, model, val_dataset, scores, matrix, per_image, data, num_pairs):
        """Write metrics.json, evaluation.json, their plots and the model card;
        num_pairs: how many (image, mask) pairs were trained and validated on."""
        at_size = model.evaluate(val_dataset, return_dict=True, verbose=0)
        summary = {f"val_{k}": float(v) for k, v in at_size.items()}
        summary["full_resolution_mean_iou"] = scores["mean_iou"]
        precision, reason = devices.choose_precision(self.args.precision)
        summary.update(precision=precision, precision_reason=reason)
        summary.update(self.timing(num_pairs[0]))
        write_json(self.dir / "metrics.json", summary)
        save_evaluation(scores, matrix, per_image, self.dir, self.args.show)
        with atomic_path(self.dir / card.CARD) as tmp:
            tmp.write_text(card.model_card(self.args, data, num_pairs, summary, scores))
        print(
            f"Validation at {self.args.image_size}px: accuracy "
            f"{summary['val_accuracy']:.3f}, mean IoU {summary['val_mean_iou']:.3f}; "
            f"at full resolution: mean IoU {scores['mean_iou']:.3f}. Outputs in "
            f"{self.dir}/."
        )
        if self.args.show:
            plt.show()


def save_figure(figure, path, keep_open=False):
    """Write a figure to PNG atomically; show it inline in a notebook."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight", dpi=100)
    if "inline" in matplotlib.get_backend():
        plt.show()  # a notebook shows the figure right under its cell
    elif not keep_open:  # --show keeps figures for one window call at the end
        plt.close(figure)


def save_evaluation(scores, matrix, per_image, output_dir, keep_open=False):
    """Write evaluation.json, the per-class IoU bars, the confusion matrix and the
    worst images."""
    write_json(Path(output_dir) / "evaluation.json", scores)
    figure, axes = plt.subplots(figsize=(7, 7))
    metrics.plot_per_class_iou(scores["per_class_iou"], axes)
    save_figure(figure, Path(output_dir) / "per_class_iou.png", keep_open)
    figure, axes = plt.subplots(figsize=(9, 8))
    metrics.plot_confusion_matrix(matrix, list(scores["per_class_iou"]), figure, axes)
    save_figure(figure, Path(output_dir) / "confusion_matrix.png", keep_open)
    if per_image.worst:  # images with classes to score
        rows = len(per_image.worst)
        figure, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
        per_image.plot(figure, axes)
        save_figure(figure, Path(output_dir) / "worst_val.png", keep_open)


def as_saved(model):
    """The network as a model file holds it: uncompiled, so plain
    `keras.saving.load_model` loads it anywhere, and in float32, so it predicts the
    same on every backend and CPU however it was trained."""

    def in_float32(layer):  # a new layer like this one that computes in float32
        config = layer.get_config()
        if "dtype" in config:  # a layer; ops such as flip have no precision
            config["dtype"] = "float32"
        return type(layer).from_config(config)

    network = keras.Model(model.inputs[0], model.outputs[0])  # the same, uncompiled
    network = keras.models.clone_model(network, clone_function=in_float32)
    network.set_weights(model.get_weights())  # float32 in mixed precision too
    return network


def save_model(model, path, classes):
    """Save the network as_saved, with its class table, atomically."""
    with atomic_path(path) as tmp:  # tmp ends in .keras, as save() wants
        as_saved(model).save(tmp)
        save_classes(tmp, classes)


class Backup(keras.callbacks.Callback):
    """Keep the run: best_model.keras whenever validation mean IoU beats `best`, a
    backup after every epoch (restored when training begins), model.keras at the end.

    Weights and optimizer state go into a fresh `backup-NNN`; replacing
    `backup.json` to name it commits the epoch, so a crash leaves the last backup
    whole.
    """

    def __init__(self, output_dir, classes, best):
        super().__init__()
        self.dir, self.classes, self.best = Path(output_dir), classes, best
        self.committed = read_backup(output_dir).get("folder")

    def on_train_begin(self, logs=None):
        if self.committed:  # the optimizer needs its variables before loading
            self.model.optimizer.build(self.model.trainable_variables)
            path = self.dir / self.committed / BACKUP_WEIGHTS
            with warnings.catch_warnings():  # Keras warns, and goes on without it
                warnings.filterwarnings("error", "Skipping variable loading")
                try:
                    self.model.load_weights(str(path))
                except (UserWarning, ValueError) as error:  # Keras wraps warnings
                    why = re.search(r"Skipping variable loading[^.]*", str(error))
                    raise UserError(
                        f"the backup {path} does not fit this run "
                        f"({why[0] if why else str(error)[:200]}); resume it with "
                        "the KERAS_BACKEND that trained it"
                    ) from None

    def on_epoch_end(self, epoch, logs=None):
        score = (logs or {}).get("val_mean_iou")
        if score is not None and score > self.best:
            self.best = score
            save_model(self.model, self.dir / "best_model.keras", self.classes)
        fresh = self.dir / f"backup-{epoch + 1:03d}"  # claimed when the run began
        with atomic_path(fresh, folder=True) as tmp:  # replaces an uncommitted one
            self.model.save_weights(str(tmp / BACKUP_WEIGHTS))
        write_json(self.dir / BACKUP_FILE, {"epoch": epoch + 1, "folder": fresh.name})
        if self.committed:
            remove(self.dir / self.committed)  # the epoch before
        self.committed = fresh.name

    def on_train_end(self, logs=None):  # errors and interruptions save nothing here
        save_model(self.model, self.dir / "model.keras", self.classes)


def refuse_nan_validation(epoch, logs):
    """Stop training where an epoch's validation loss is NaN or infinite."""
    if not math.isfinite(logs.get("val_loss", 0.0)):
        raise RuntimeError(f"NaN or Inf loss in the validation of epoch {epoch + 1}.")


def what_is_kept(output_dir):
    """Say which epoch a stopped run keeps, and how to go on from there."""
    done = completed_epochs(output_dir) if Path(output_dir).is_dir() else 0
    if not done:
        return (
            f"No epoch was completed, so nothing is kept in {output_dir}; start again "
            "with --overwrite."
        )
    return (
        f"The last good epoch ({done}) is kept in {output_dir}; continue with: "
        f"python deeplabv3_plus.py --resume --output-dir {shlex.quote(str(output_dir))}"
    )
