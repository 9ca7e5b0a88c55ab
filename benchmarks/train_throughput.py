"""Training throughput of the DeepLabV3+ tutorial model, and of its input pipeline.

Measures, on whatever backend `KERAS_BACKEND` selects:

1. Training steps on synthetic in-memory batches (no input pipeline), for the
   keras-io example's model ("original": plain dilated convolutions, classify
   after the last upsampling; `keras_io_original.py`) and for the tutorial's
   ("rewrite": dilation clamped to the feature map, classify at 1/4 resolution,
   then upsample):
   compile + first-step time, then the median images/s and step time over several
   timed windows of `model.train_on_batch` calls.
2. Training FLOPs per image, counted analytically from the built model's Conv2D
   layers (BatchNorm, ReLU, pooling and upsampling are left out; training counts
   as 3x the forward pass), and the TFLOP/s the training steps achieve.
3. The tf.data pipeline alone (`deeplabv3_plus.data_generator` with augmentation)
   on synthetic toy-people JPEGs: the first epoch (decoding from disk) and a
   cached epoch, in images/s, and whether it could keep up with training.

Each measured order prints one JSON line on stdout; progress goes to stderr.

On a CPU (small images, few steps; a few minutes):

    python benchmarks/train_throughput.py --image-size 128 --batch-size 8 \
        --steps 3 --windows 3 --pipeline-images 64

On a GPU (the tutorial's size; the precision and XLA are picked for the device):

    KERAS_BACKEND=jax python benchmarks/train_throughput.py --image-size 512 \
        --batch-size 32
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The support package comes first: it keeps TensorFlow's start-up logs quiet.
from deeplab_support import datasets, devices, files  # noqa: E402
from deeplab_support.classes import CIHP  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tensorflow import config as tf_config  # noqa: E402

import deeplabv3_plus  # noqa: E402
from benchmarks import keras_io_original  # noqa: E402
from data import make_toy_people  # noqa: E402

IMAGE_SIZE = 512  # side of the square input, as in the tutorial
BATCH_SIZE = 16  # images per training step
NUM_CLASSES = CIHP.num_classes  # 20 CIHP classes
LEARNING_RATE = 1e-3  # Adam's step size; it does not change the speed
WARMUP_STEPS = 3  # untimed steps; the first one also compiles
STEPS = 10  # training steps per timed window
WINDOWS = 5  # timed windows; the median is reported
PIPELINE_IMAGES = 256  # toy images for the input-pipeline measurement
SEED = 42  # same synthetic batches and initial weights every run
# order -> the function that builds the model: keras-io's, or the tutorial's
ORDERS = {
    "original": keras_io_original.DeeplabV3Plus,
    "rewrite": deeplabv3_plus.DeeplabV3Plus,
}
JIT = {"auto": "auto", "on": True, "off": False}  # --jit-compile -> compile()


PRECISIONS = ["auto", "float32", "mixed_bfloat16", "mixed_float16"]
ORDER_HELP = "rewrite: the tutorial's model; original: keras-io's; both: original first"
JIT_HELP = "XLA-compile the step; auto: as Keras decides (JAX yes, TF only on a GPU)"
FLAGS = [  # flag, type, default, choices, help (the default is appended)
    ("--image-size", int, IMAGE_SIZE, None, "input side, a multiple of 16"),
    ("--batch-size", int, BATCH_SIZE, None, "images per training step"),
    (
        "--precision",
        str,
        "auto",
        PRECISIONS,
        "auto: as the tutorial picks for the device",
    ),
    ("--order", str, "both", ["rewrite", "original", "both"], ORDER_HELP),
    ("--warmup-steps", int, WARMUP_STEPS, None, "untimed steps; the first compiles"),
    ("--steps", int, STEPS, None, "training steps per timed window"),
    ("--windows", int, WINDOWS, None, "timed windows; the median is reported"),
    ("--pipeline-images", int, PIPELINE_IMAGES, None, "toy images; 0 skips tf.data"),
    ("--data-dir", Path, None, None, "folder for the toy images (a private temp one)"),
    ("--jit-compile", str, "auto", list(JIT), JIT_HELP),
]


def parse_args(argv=None):
    """Read the command line; defaults come from the constants above."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, kind, default, choices, text in FLAGS:
        parser.add_argument(
            flag,
            type=kind,
            default=default,
            choices=choices,
            help=f"{text} (default: %(default)s)",
        )
    parser.add_argument(
        "--freeze-backbone", action="store_true", help="the tutorial's model only"
    )
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def check_args(parser, args):
    """Reject flags that cannot work, with argparse's usage message."""
    if args.image_size < 16 or args.image_size % 16:
        parser.error(
            "--image-size must be a positive multiple of 16 (the encoder's output "
            f"stride), got {args.image_size}"
        )
    for name in ["batch_size", "warmup_steps", "steps", "windows"]:
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, "
                f"got {getattr(args, name)}"
            )
    if args.freeze_backbone and args.order != "rewrite":
        parser.error("--freeze-backbone needs --order rewrite (the tutorial's model)")
    if args.pipeline_images and args.pipeline_images < args.batch_size:
        parser.error(
            f"--pipeline-images ({args.pipeline_images}) must be 0 or at "
            f"least --batch-size ({args.batch_size}) to form one batch"
        )
    args.data_dir = data_dir = args.data_dir or files.private_dir("bench") / "toy"
    if (
        args.pipeline_images
        and data_dir.exists()
        and (
            not data_dir.is_dir()
            or any(data_dir.iterdir())
            and not (data_dir / make_toy_people.MARKER_NAME).is_file()
        )
    ):
        parser.error(
            f"--data-dir {data_dir} holds something other than the "
            "benchmark's toy images; choose an empty or new folder"
        )


def log(message):
    """Print a progress line to stderr, so stdout holds only JSON."""
    print(message, file=sys.stderr, flush=True)


def device_name():
    """Name the device the backend trains on: the GPU's name, else the CPU."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            if jax.default_backend() != "cpu":
                return jax.devices()[0].device_kind
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
        else:
            gpus = tf_config.list_physical_devices("GPU")
            if gpus:
                details = tf_config.experimental.get_device_details(gpus[0])
                return details.get("device_name", gpus[0].name)
    except Exception as error:  # a name is nice to have, never worth a crash
        log(f"could not name the accelerator ({error}); reporting the CPU")
    cpu = platform.processor() or platform.machine()
    return f"cpu: {cpu}, {os.cpu_count()} cores"


def conv_flops(model):
    """Forward FLOPs per image of every Conv2D layer, nested models included."""
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model: count its own convolutions
            total += conv_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            total += conv2d_flops(layer)
    return total


def conv2d_flops(layer):
    """2 x output pixels x kernel taps x input channels x filters (a MAC is 2)."""
    channels_first = layer.data_format == "channels_first"
    out = layer.output.shape
    height, width = out[2:4] if channels_first else out[1:3]
    in_channels = layer.input.shape[1 if channels_first else -1]
    kh, kw = layer.kernel_size
    # Dilation spreads the taps but does not add any.
    taps = kh * kw * (in_channels // layer.groups) * layer.filters
    return 2 * height * width * taps


def synthetic_batch(image_size, batch_size, num_classes):
    """Random 0..255 float32 images and integer labels, as backend tensors."""
    rng = np.random.default_rng(SEED)
    shape = (batch_size, image_size, image_size)
    images = rng.uniform(0, 255, shape + (3,)).astype("float32")
    labels = rng.integers(0, num_classes, shape + (1,)).astype("int32")
    # Converted once, so the steps time the model, not a host-to-device copy.
    return keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)


def build_compiled_model(args, order, policy):
    """Build one order's model with random weights; compile it like training."""
    keras.backend.clear_session()  # also resets the policy, so set it after
    keras.utils.set_random_seed(SEED)
    keras.config.set_dtype_policy(policy)
    frozen = {"freeze": True} if args.freeze_backbone else {}  # only "rewrite" has it
    model = ORDERS[order](args.image_size, NUM_CLASSES, None, **frozen)
    optimizer = deeplabv3_plus.make_optimizer(LEARNING_RATE, "constant", 1)
    deeplabv3_plus.compile_model(model, optimizer, NUM_CLASSES)
    if args.jit_compile != "auto":  # compile_model always asks for "auto"
        model.jit_compile = JIT[args.jit_compile]  # read when the step is traced
    return model


def timed_steps(model, batch, steps):
    """Run training steps; return seconds, waiting for the last one to finish."""
    start = time.perf_counter()
    for _ in range(steps):
        logs = model.train_on_batch(*batch, return_dict=True)
    loss = float(logs["loss"])  # a Python float: the device has really finished
    if not math.isfinite(loss):
        log(f"warning: the training loss is {loss}")
    return time.perf_counter() - start


def measure_training(args, order, policy):
    """Compile, warm up, and time the training steps of one model order."""
    log(f"[{order}] building a {args.image_size}px DeepLabV3+ ({policy})")
    model = build_compiled_model(args, order, policy)
    forward = conv_flops(model)
    batch = synthetic_batch(args.image_size, args.batch_size, NUM_CLASSES)
    compile_seconds = timed_steps(model, batch, 1)
    log(f"[{order}] compile + first step: {compile_seconds:.1f} s")
    if args.warmup_steps > 1:
        timed_steps(model, batch, args.warmup_steps - 1)
    seconds = [timed_steps(model, batch, args.steps) for _ in range(args.windows)]
    step_s = statistics.median(seconds) / args.steps
    images_per_second = args.batch_size / step_s
    log(f"[{order}] {images_per_second:.2f} images/s, {step_s * 1e3:.1f} ms/step")
    return {
        "jit_compile": bool(model.jit_compile),
        "compile_seconds": compile_seconds,
        "images_per_second": images_per_second,
        "step_ms": step_s * 1e3,
        "forward_gflop_per_image": forward / 1e9,
        # Backward costs about twice the forward: gradients of activations and
        # of weights. BN, ReLU, pooling and upsampling are left out: small.
        "train_gflop_per_image": 3 * forward / 1e9,
        "tflops": images_per_second * 3 * forward / 1e12,
    }


def epoch_images_per_second(dataset):
    """Iterate a dataset once; return the images it yielded per second."""
    start, count = time.perf_counter(), 0
    for images, *_ in dataset:
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def measure_pipeline(args):
    """Time the augmented training pipeline: an epoch from disk, then cached."""
    if not args.pipeline_images:
        return {"first": None, "cached": None}
    n, size = args.pipeline_images, args.image_size
    log(f"[pipeline] toy images in {args.data_dir} ({n} of them, made once)")
    root = make_toy_people.ensure(args.data_dir, n, SEED, max(64, size // 2), size)
    pairs = files.check_pairs(datasets.find(root).train[:n], CIHP)
    dataset = deeplabv3_plus.data_generator(pairs, size, args.batch_size, CIHP, 0, True)
    first = epoch_images_per_second(dataset)
    cached = epoch_images_per_second(dataset)
    log(f"[pipeline] {first:.1f} images/s decoding, {cached:.1f} images/s cached")
    return {"first": first, "cached": cached}


def rounded(value):
    """Round to 4 significant digits; a positive number never becomes 0."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def main(args):
    """Measure the pipeline once, then each model order; print JSON lines."""
    policy = devices.choose_precision(args.precision)[0]
    pipeline = measure_pipeline(args)
    orders = ["original", "rewrite"] if args.order == "both" else [args.order]
    for order in orders:
        result = measure_training(args, order, policy)
        cached = pipeline["cached"]
        input_bound = None if cached is None else cached < result["images_per_second"]
        record = {
            "backend": keras.backend.backend(),
            "device": device_name(),
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "precision": policy,
            "order": order,
            **result,
            "pipeline_first_epoch_images_per_second": pipeline["first"],
            "pipeline_cached_images_per_second": cached,
            "input_bound": input_bound,
        }
        print(json.dumps({k: rounded(v) for k, v in record.items()}), flush=True)


if __name__ == "__main__":
    main(parse_args())
