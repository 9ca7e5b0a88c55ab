"""The tutorial's command line: flags, modes, and one clear line for every error.

`python deeplabv3_plus.py [flags]` trains; `--predict`, `--evaluate` and `--export`
use a saved model. A notebook ignores the kernel's arguments unless a cell sets
`sys.argv = ["deeplabv3_plus.py", ...]`. A `UserError` prints one `error: ...` line
and exits with code 2; Ctrl-C or SIGTERM says how to resume and exits with 130.
"""

import argparse
import importlib
import errno
import functools
import json
import math
import os
import re
import signal
import sys
import zipfile
from pathlib import Path

import keras
import matplotlib
from PIL import Image

from deeplab_support import UserError, devices, export, files, metrics, runs, video
from deeplab_support.classes import ids_png, model_classes

# A first run on a laptop CPU: small batches give more steps per minute, more
# distinct images beat more epochs, augmentation pays off only later, class weights
# teach the rare parts quickly, and the cosine decay settles the model by the end.
QUICK = dict(
    image_size=112,
    batch_size=4,
    epochs=6,
    num_train_images=192,
    num_val_images=16,
    learning_rate=2e-3,
    lr_schedule="cosine",
    weights="none",
    augment=False,
    class_weights=True,
)


class Parser(argparse.ArgumentParser):
    """argparse, with a bad flag told in one `error:` line instead of the usage."""

    def error(self, message):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def checked(kind, valid, problem):
    """An argparse type: kind(text), refused with `problem` where not `valid`."""

    def parse(text):
        value = kind(text)
        if not valid(value):
            raise argparse.ArgumentTypeError(problem.format(text))
        return value

    parse.__name__ = kind.__name__  # argparse says "invalid int value: 'abc'"
    return parse


def positive(kind):
    """An argparse type: a finite number of this kind above 0."""
    return checked(kind, lambda v: 0 < v < math.inf, "must be positive, got {}")


seed = checked(int, lambda v: 0 <= v < 2**32, f"must lie in 0..{2**32 - 1}, got {{}}")
path_text = checked(str, str.strip, "an empty path")  # an unset shell variable, say
fraction = checked(float, lambda v: 0 <= v < 1, "must lie in [0, 1), got {}")


PREDICTION_KINDS = ["mask", "overlay", "ids"]  # --predict writes <name>_<kind>.png
PRECISIONS = ["auto", "float32", "mixed_bfloat16", "mixed_float16"]
# Refused with --predict, --evaluate, --export: a saved model knows how it was made.
TRAINING_ONLY = {"freeze_backbone", "loss", "keep_aspect"}
BOOL = argparse.BooleanOptionalAction  # --augment and --no-augment
SWITCH = "store_true"  # --download: off unless given


def add_flags(add):
    """Every flag as add(flag, type or action or choices, help), in --help's order."""
    add("--data-dir", path_text, "CIHP, VOC or images/+masks/ (data/, else synthetic)")
    add("--download", SWITCH, "download and extract CIHP first")
    add("--output-dir", path_text, "where outputs go")
    add("--image-size", positive(int), "input side, a multiple of 16")
    add("--batch-size", positive(int), "global batch size")
    add("--epochs", positive(int), "training epochs")
    add("--num-train-images", positive(int), "the first N files")
    add("--num-val-images", positive(int), "the next N files")
    add("--learning-rate", positive(float), "Adam's learning rate")
    schedules = ["constant", "poly", "cosine"]
    add("--lr-schedule", schedules, "constant, DeepLab's poly decay, or cosine")
    add("--freeze-backbone", SWITCH, "train the encoder and decoder only")
    add("--keep-aspect", SWITCH, "fit photos into the square, padded with void")
    add(
        "--loss",
        metrics.LOSSES,
        "focal: gamma 2; dice: soft Dice of the classes present",
    )
    add("--weights", path_text, "imagenet, none, or a .keras/.weights.h5 file")
    add("--precision", PRECISIONS, "auto: bfloat16 where native, float16 on older GPUs")
    add("--augment", BOOL, "augment training images")
    add("--cache", BOOL, "cache decoded images in memory")
    add("--distribute", SWITCH, "data-parallel on all devices")
    steps = "steps per call (1 on a CPU, 8 on GPUs)"
    add("--steps-per-execution", positive(int), steps, metavar="N")
    add("--seed", seed, "random seed")
    add("--resume", SWITCH, "continue the run in --output-dir")
    add("--overwrite", SWITCH, "replace the run in --output-dir")
    add("--tta", ["none", "flip"], "flip TTA in evaluation, --predict, parser exports")
    add("--tta-scales", str, "predict at these multiples of the size", metavar="SCALES")
    add("--evaluate", path_text, "only evaluate this .keras model", metavar="MODEL")
    add("--predict", path_text, "only segment these photos", nargs="+", metavar="IMAGE")
    masks = "with --predict: also a 0/255 mask of these classes (repeatable)"
    add("--mask-classes", str, masks, action="append", metavar="NAMES")
    add("--cutout", SWITCH, "with --mask-classes: also the photo cut out to them")
    smoothing = "--predict on a video: each frame keeps this share of the last's"
    add("--temporal-smoothing", fraction, smoothing, metavar="A")
    classes = "merge the classes into your own label set (see the README)"
    add("--class-map", path_text, classes, metavar="FILE")
    add("--model", path_text, "for --predict, --export (<output-dir>/model.keras)")
    add("--export", [*export.FORMATS], "only export --model, in this format")
    splits = ["train-tail", "official"]
    add("--val-split", splits, "validate after the training files, or on Validation/")
    add("--ignore-index", int, "the void label, in no loss or score")
    weigh = "weigh each class by its rarity: each pixel's cross-entropy or focal loss, "
    add("--class-weights", BOOL, weigh + "each class's Dice term")
    add("--tensorboard", SWITCH, "write TensorBoard logs to <output-dir>/logs")
    add("--show", SWITCH, "also open the plots in windows")
    add("--quick", SWITCH, "a first run in minutes on a CPU")


def in_notebook():
    """Whether this runs in a Jupyter kernel, not merely a process that imports it."""
    kernel, ipython = sys.modules.get("ipykernel.zmqshell"), sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return kernel is not None and isinstance(shell, kernel.ZMQInteractiveShell)


def parse_args(defaults, argv=None):
    """Read the command line; unset flags take --quick's values, then `defaults`."""
    parser = Parser(
        prog="deeplabv3_plus.py",
        description="Train DeepLabV3+ on CIHP or your data.",
        argument_default=argparse.SUPPRESS,  # so the flags given are those set
    )
    unset = {}  # flag name -> its value when not given and without a default

    def add(flag, kind, text, **options):
        name = flag[2:].replace("-", "_")
        unset[name] = False if kind == SWITCH else None
        key = "action" if kind in (SWITCH, BOOL) else "type"
        options["choices" if isinstance(kind, list) else key] = kind
        shown = [f"default {defaults[name]}"] if name in defaults else []
        if QUICK.get(name, defaults.get(name)) != defaults.get(name):
            shown.append(f"{QUICK[name]} with --quick")
        text += f" ({'; '.join(map(str, shown))})" if shown else ""
        parser.add_argument(flag, help=text, **options)

    add_flags(add)
    if argv is None:
        argv = sys.argv[1:]
        if in_notebook() and Path(sys.argv[0]).name != parser.prog:
            argv = []  # the kernel's own arguments; a cell may set sys.argv to ours
    args = parser.parse_args(argv)
    args.given = set(vars(args))
    preset = QUICK if getattr(args, "quick", False) else {}  # flags beat the preset
    for name, value in unset.items():
        if name not in args.given:
            setattr(args, name, preset.get(name, defaults.get(name, value)))
    if args.model is None:  # the model that a run into --output-dir trained
        args.model = str(Path(args.output_dir) / "model.keras")
    args.flip = args.tta == "flip"
    args.train = not (args.predict or args.evaluate or args.export)
    return args


def check_args(args):
    """Reject flags that cannot work, alone or together, before any work is done."""
    modes = [f"--{m}" for m in ["predict", "evaluate", "export"] if vars(args)[m]]
    if len(modes) > 1:
        raise UserError(
            f"{modes[0]} and {modes[1]} cannot be combined; run them one at a time "
            "(--evaluate takes its model as its value, the others take --model)"
        )
    if (args.mask_classes or args.cutout) and not args.predict:
        flag = "--mask-classes" if args.mask_classes else "--cutout"
        raise UserError(
            f"{flag} shapes what --predict writes; add --predict with the photos, "
            f"or drop {flag}"
        )
    if args.export and "tta_scales" in args.given:  # even 1: it has no effect
        raise UserError(
            "--export writes the model for its own input size; --tta-scales is for "
            "--evaluate and --predict: drop it (--tta flip goes into a parser export)"
        )
    if args.class_map and args.export and not args.export.endswith("_parser"):
        raise UserError(
            f"--export {args.export} writes the model's logits for its own classes; "
            "--class-map goes into the parser exports: use --export onnx_parser or "
            "litert_parser, or drop --class-map"
        )
    shaping = sorted(TRAINING_ONLY & args.given)
    if shaping and not args.train:
        flag = "--" + shaping[0].replace("_", "-")
        raise UserError(
            f"{flag} shapes training; --predict, --evaluate and --export use the "
            f"model as saved: drop {flag}"
        )
    if args.freeze_backbone and args.weights == "none":
        files.warn(
            "--freeze-backbone with --weights none keeps a random ResNet50: only "
            "the encoder and decoder learn, on random features"
        )
    if args.temporal_smoothing and not args.predict:
        raise UserError(
            "--temporal-smoothing steadies --predict on a video; add --predict with "
            "the clip, or drop --temporal-smoothing"
        )
    if args.cutout and not args.mask_classes:
        raise UserError(
            "--cutout cuts the photo out to the classes of --mask-classes; add "
            '--mask-classes, for example --mask-classes "Upper-clothes,Coat"'
        )
    if args.train and "model" in args.given:
        raise UserError(
            "--model names the model for --predict and --export; to start training "
            "from a saved model, pass it as --weights"
        )
    size = args.image_size
    if size % 16 or size < 32:
        raise UserError(
            f"--image-size must be a multiple of 16 (the encoder's output stride) from "
            f"32 up, got {size}; try {max(round(size / 16) * 16, 32)}"
        )
    if (args.steps_per_execution or 1) > 1 and keras.backend.backend() == "torch":
        raise UserError(
            f"--steps-per-execution {args.steps_per_execution} needs JAX or "
            "TensorFlow: Keras runs one step per call on PyTorch; drop the flag, or "
            "set KERAS_BACKEND=jax or tensorflow"
        )
    if args.tensorboard:  # imported now: a broken install would fail after epoch 1
        try:
            importlib.import_module("tensorboard")
        except Exception as error:
            raise UserError(
                f"--tensorboard needs the tensorboard package, which did not import "
                f"({error}); run pip install --force-reinstall tensorboard, or drop "
                "--tensorboard"
            ) from None
    if not args.train:
        return
    if args.num_train_images < args.batch_size:
        raise UserError(
            f"--num-train-images ({args.num_train_images}) is smaller than "
            f"--batch-size ({args.batch_size}); no full batch could be formed"
        )
    tta_sizes(args.tta_scales, size)  # a bad scale must not wait for the training
    count, memory = args.num_train_images + args.num_val_images, devices.memory_bytes()
    needed = count * size**2 * 4  # uint8 RGB and mask, 4 bytes a pixel
    if args.cache and memory and needed > 0.8 * memory:  # before hours of decoding
        raise UserError(
            f"--cache would keep {needed / 2**30:.1f} GiB of decoded images in memory "
            f"({count} images at {size} px), but this machine has "
            f"{memory / 2**30:.1f} GiB; pass --no-cache to decode them every epoch"
        )


def check_restored(args):
    """For --resume: refuse a setting from run.json that its flag would refuse."""
    restored = [*runs.RUN_CONFIG, "epochs"]
    optional = ["data_dir", "class_map"]  # None: the flag was not given

    def add(flag, kind, text, **options):
        name = flag[2:].replace("-", "_")
        value = getattr(args, name, None)
        if name not in restored or value is None and name in optional:
            return
        try:
            if isinstance(kind, list):
                valid = value in kind
            elif kind in (SWITCH, BOOL):
                valid = type(value) is bool
            else:
                valid = kind(str(value)) == value
        except (argparse.ArgumentTypeError, ValueError):
            valid = False
        if not valid:
            raise UserError(
                f"{Path(args.output_dir, runs.RUN_FILE)} holds {flag} {value!r}, which "
                f"{flag} refuses; start the run again with --overwrite"
            )

    add_flags(add)


def start(args):
    """Check the flags, seed everything, pick the precision; read --resume."""
    if not in_notebook():  # a notebook shows errors and figures in its cells
        for stream in [sys.stdout, sys.stderr]:  # a file name that is not UTF-8
            if hasattr(stream, "reconfigure"):  # not a StringIO, which takes it
                stream.reconfigure(errors="backslashreplace")
        sys.excepthook = functools.partial(excepthook, args)
        # Schedulers stop jobs with SIGTERM: treated as Ctrl-C (KeyboardInterrupt).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        if not args.show:  # write PNGs only; never wait on a window
            matplotlib.use("Agg")
    resuming = args.train and args.resume
    if resuming:  # --resume takes the earlier run's settings first
        runs.prepare_resume(args, check_restored)
    check_args(args)  # then all of them are checked once
    if args.train and not resuming:  # and then the folder: a mistyped flag first
        runs.prepare_resume(args)
    if args.evaluate:  # a bad output folder stops it now, not after hours
        runs.claim(args.output_dir, runs.EVALUATION_NAMES, "--evaluate")
    keras.utils.set_random_seed(args.seed)
    if args.train:  # saved models, and so --predict and --evaluate, use float32
        policy, reason = devices.choose_precision(args.precision)
        keras.config.set_dtype_policy(policy)
        print(f"Precision: {policy}, since {reason}.")
    args.steps_per_execution = devices.steps_per_execution(args.steps_per_execution)
    devices.warn_if_gpu_unused()


OUT_OF_MEMORY = ["OOM when allocating", "RESOURCE_EXHAUSTED", "out of memory"]


def explain(error, args=None):
    """Print the one line an error deserves and return the exit code; None if the
    error is not the user's. `args` say where the run keeps its outputs."""
    output_dir, text = getattr(args, "output_dir", "outputs"), str(error)
    training = getattr(args, "train", False)  # then say what the run keeps
    kept = functools.partial(runs.what_is_kept, output_dir) if training else str
    memory = args is not None and (  # NumPy's, TensorFlow's, JAX's, PyTorch's words
        isinstance(error, MemoryError) or any(p in text for p in OUT_OF_MEMORY)
    )
    # Ctrl-C inside TensorFlow's C++ code can come back as pybind11's RuntimeError.
    if isinstance(error, KeyboardInterrupt) or "BY KeyboardInterrupt" in text:
        print(f"\nInterrupted. {kept()}".rstrip(), file=sys.stderr)
        return 130
    if isinstance(error, RuntimeError) and "NaN or Inf loss" in text:
        error = UserError(
            f"the loss became NaN or infinite ({text.split('.')[0]}); lower "
            f"--learning-rate. {kept()}"
        )
    elif memory:
        sizes = f"--image-size {args.image_size} and --batch-size {args.batch_size}"
        error = UserError(
            f"ran out of memory ({type(error).__name__}) at {sizes}; lower "
            f"--batch-size or --image-size. {kept()}"
        )
    elif isinstance(error, OSError):
        error = output_error(error, output_dir, kept())
    if isinstance(error, UserError):
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        return 2


def output_error(error, output_dir, kept=""):
    """A UserError for a failed write under --output-dir, else the error itself."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error):
        return UserError(
            f"the disk holding {output_dir} is full; free some space. {kept}"
        )
    where = Path(os.fsdecode(error.filename or "")).resolve()
    if error.filename and Path(output_dir).resolve() in where.parents:
        return UserError(
            f"cannot write {error.filename} ({error.strerror}); check the space and "
            f"permissions of {output_dir}. {kept}"
        )
    return error


def excepthook(args, kind, error, traceback):
    """Uncaught exceptions of the script: one line for the user's, else as usual."""
    code = explain(error, args)
    if code is None:
        return sys.__excepthook__(kind, error, traceback)
    sys.exit(code)  # an exit as any other: the atexit handlers clean up


def tta_sizes(scales, size):
    """The input sizes of --tta-scales (a comma-separated list) for a model's size."""
    sizes = []
    for text in scales.split(","):
        number = re.fullmatch(r"\s*(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*", text, re.I)
        scale = float(text) if number else 0  # not nan, inf or -1
        if not 0 < scale < math.inf:
            raise UserError(
                f"--tta-scales takes positive numbers separated by commas, got "
                f"{text.strip()!r} in {scales!r}; for example --tta-scales 0.75,1,1.25"
            )
        scaled = round(size * scale / 16) * 16  # the encoder's output stride
        if scaled < 32:
            raise UserError(
                f"--tta-scales {text.strip()} would feed the {size} px model "
                f"{scaled} px images, under the 32 px it needs; use scales of at "
                f"least {32 / size:.2f}"
            )
        sizes.append(scaled)
    return list(dict.fromkeys(sizes))  # each size once, in the order given


def load_model(path, flag):
    """Load a .keras model saved by this script and its class table."""
    files.require_file(path, "model file", flag, " (train first?)")
    try:
        if not zipfile.is_zipfile(path):  # Keras would say "File not found"
            raise ValueError("not a .keras file, which is a zip archive")
        model = keras.saving.load_model(path)
    except Exception as error:  # Keras raises many kinds for a wrong file
        raise UserError(
            f"cannot load model {path} ({str(error)[:200]}); check {flag}"
        ) from None
    shape, out = tuple(model.input_shape), tuple(model.output_shape)
    if len(shape) != 4 or shape[1] is None or shape[1:] != (shape[1], shape[1], 3):
        raise UserError(
            f"model {path} takes inputs of shape {shape}; a DeepLabV3+ from this "
            f"script takes (None, size, size, 3). Check {flag}"
        )
    classes = model_classes(path, out[-1])
    if len(out) != 4 or out[1:] != (*shape[1:3], classes.num_classes):
        raise UserError(
            f"model {path} outputs shape {out}, not one score per class for every "
            f"pixel (None, {shape[1]}, {shape[1]}, classes) for the "
            f"{classes.num_classes} classes its table names; check {flag}"
        )
    # Models saved by earlier releases take a list of one input; Keras warns on
    # every call of those: the same model takes the input itself.
    return keras.Model(model.inputs[0], model.outputs[0], name=model.name), classes


def claim_predictions(paths, output_dir, kinds=PREDICTION_KINDS):
    """(input, output prefix) of each photo and video of --predict, all their output
    names claimed at once; a prefix gets -2, -3... where its outputs would replace
    an input, another input's outputs or a file not ours."""
    inputs, owned = find_inputs(paths), runs.owned_names(output_dir)
    resolved, found, names = {path.resolve() for path in inputs}, [], {}
    photo = functools.partial(prediction_paths, kinds=kinds)
    for path in inputs:  # two photos called x.jpg must not share x_mask.png
        stem = files.shortened(path.stem, 160)  # and the rest of a name: 90 bytes
        outputs = video.outputs if video.is_video(path) else photo
        prefix = runs.free_prefix(output_dir, stem, outputs, owned, names, resolved)
        names.update(dict.fromkeys(out.name for out in outputs(prefix)))  # in order
        found.append((path, prefix))
    runs.claim(output_dir, list(names), "--predict")  # those never written: released
    if kinds != PREDICTION_KINDS and any(video.is_video(path) for path in inputs):
        files.warn(
            "--mask-classes and --cutout shape what --predict writes for a photo; "
            "a video gets its overlay video and ids alone"
        )
    return Inputs(found)


def find_inputs(paths):
    """The photos and videos that --predict names, and those in its folders."""
    found = []
    for path in map(Path, paths):
        kind = "video" if video.is_video(path) else "photo"
        if path.is_dir():  # without the outputs its manifest lists
            ours = runs.owned_names(path)
            listed = files.list_images(path, files.IMAGE_EXTENSIONS + video.EXTENSIONS)
            found += [p for p in listed if p.name not in ours]
        elif not os.path.lexists(path):
            raise UserError(f"{kind} {path} does not exist; check --predict")
        elif path.name in runs.owned_names(path.parent):
            files.warn(
                f"skipping {path}: it is an output of this project, not a {kind}"
            )
        elif files.is_regular_file(path):
            found.append(path)
    if not found:
        named = " ".join(map(str, paths))
        raise UserError(f"no .jpg or .png images or videos in {named}; check --predict")
    return found


def read_photos(inputs, mode="RGB"):
    """(RGB or RGBA image, output prefix) of each photo of claim_predictions'
    inputs; a photo that cannot be read is skipped."""
    for photo, prefix in inputs:
        if not video.is_video(photo):
            try:
                image = files.read_photo(photo, mode=mode)
            except UserError as error:  # one broken photo must not stop the others
                inputs.skip(photo, error)
                continue
            yield image, prefix


class Inputs(list):
    """--predict's (photo or video, output prefix) pairs; an error once none reads."""

    skipped = frozenset()  # the inputs that could not be read

    def skip(self, path, error):
        """Warn that an input cannot be read; stop if it was the last one left."""
        if len(self) == 1:  # the one input: why it cannot be read is the error
            raise error
        files.warn(f"skipped: {error}")
        self.skipped = self.skipped | {path}
        if self.skipped == {path for path, _ in self}:
            names = " ".join(str(path) for path, _ in self)
            raise UserError(
                f"none of the photos and videos in {names} could be read; check "
                "--predict"
            )


def prediction_paths(prefix, kinds=PREDICTION_KINDS):
    """The files that --predict writes for one photo."""
    return [prefix.with_name(f"{prefix.name}_{kind}.png") for kind in kinds]


def mask_groups(texts, classes):
    """--mask-classes as {name for the file: class ids}; unknown names are errors."""
    groups = {}
    for text in texts or []:
        names = [name.strip() for name in text.split(",")]
        unknown = [name for name in names if name not in classes.names]
        if unknown:
            raise UserError(
                f"--mask-classes {text!r} names {unknown[0]!r}, which the model does "
                f"not predict; its classes are {', '.join(classes.names)}"
            )
        key = re.sub(r"[^\w+-]+", "_", "+".join(names))  # a safe part of a file name
        key = files.shortened(key, 64)  # its file's name holds the photo's too
        ids = [classes.names.index(name) for name in names]
        if groups.setdefault(key, ids) != ids:
            raise UserError(
                f"--mask-classes {text!r} and an earlier group would both be written "
                f"to *_class-{key}.png; ask for one of them at a time"
            )
    return groups


def prediction_kinds(groups, cutout=False):
    """What --predict writes per photo: colour mask, overlay, ids, and per group of
    --mask-classes its 0/255 mask (and with --cutout the photo cut out to it)."""
    kinds = PREDICTION_KINDS + [f"class-{name}" for name in groups]
    return kinds + ([f"cutout-{name}" for name in groups] if cutout else [])


def save_prediction(prefix, pictures, predicted, classes):
    """Write each picture as <prefix>_<kind>.png, and _ids.png; print the classes."""
    pictures = {kind: Image.fromarray(p) for kind, p in pictures.items()}
    pictures["ids"] = ids_png(predicted, classes)  # palette PNG: colours, and ids
    for path, picture in zip(prediction_paths(prefix, pictures), pictures.values()):
        with runs.atomic_path(path) as tmp:
            picture.save(tmp, format="PNG")
    shares = metrics.class_shares(predicted, classes.names)
    shown = (f"{name} {metrics.percent(share)}" for name, share in shares.items())
    print(f"{files.printable(prefix.name)}: " + ", ".join(shown))


def print_scores(scores, matrix, per_image, output_dir):
    """Write evaluation.json and its plots; print the scores as one JSON line."""
    runs.save_evaluation(scores, matrix, per_image, output_dir)  # claimed at start
    tables = ["per_class_iou", "per_image", "classes"]  # in evaluation.json only
    shown = {k: v for k, v in scores.items() if k not in tables}
    print(json.dumps(shown))
