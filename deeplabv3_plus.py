"""
Title: Multiclass semantic segmentation using DeepLabV3+
Author: [Soumik Rakshit](http://github.com/soumik12345); Keras 3 rendition
Date created: 2021/08/31
Last modified: 2026/11/26
Description: Train DeepLabV3+ to label each pixel of a person with one of 20 parts.
Accelerator: GPU
"""

"""
## Introduction

Semantic segmentation assigns a class to every pixel of an image. Here the classes
are the 20 human parts of the
[Crowd Instance-level Human Parsing (CIHP)](https://arxiv.org/abs/1811.12596) data
set: hair, face, left arm, right shoe, and so on, plus the background.

[DeepLabV3+](https://arxiv.org/abs/1802.02611) is an encoder-decoder network. Its
encoder is [DeepLabV3](https://arxiv.org/abs/1706.05587): a classification backbone
(ResNet50 here) whose last layers are replaced by *atrous* (dilated) convolutions,
so the feature map stays at 1/16 of the input resolution (the *output stride*)
instead of shrinking to 1/32. A dilated 3x3 convolution spreads its nine taps over a
wider window, so it sees more context without losing resolution and without extra
parameters. The idea goes back to the first
[DeepLab](https://arxiv.org/abs/1606.00915) paper. The encoder ends in *Dilated
Spatial Pyramid Pooling*: the same features seen at several dilation rates at once,
so that both small parts (a glove) and large ones (a coat) get the right context.

The decoder then upsamples the coarse encoder output by 4, mixes in sharp
low-level features from early in the backbone, refines the result with two
convolutions and upsamples to the input size, which recovers crisp boundaries.

The script runs without any download: if CIHP is not on disk it trains on a small
synthetic "toy people" data set in exactly the CIHP layout, and says so.
"""

"""
## Setup
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import zipfile
from pathlib import Path

import cv2
import keras
import matplotlib
import numpy as np
from keras import layers, ops
from scipy.io import loadmat
from tensorflow import cast as tf_cast
from tensorflow import concat as tf_concat
from tensorflow import data as tf_data
from tensorflow import gather as tf_gather
from tensorflow import image as tf_image
from tensorflow import io as tf_io
from tensorflow import math as tf_math
from tensorflow import random as tf_random
from tensorflow import where as tf_where

import checks
import devices
import evaluation
import training_state
from checks import UserError
from data import toy_people

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data" / "instance-level_human_parsing"  # where --download puts CIHP
TOY_DATA_DIR = HERE / "data" / "toy_people"  # synthetic stand-in, made on first use
CIHP_URL = (  # the tutorial's Google Drive copy of CIHP, about 2.7 GB zipped
    "https://drive.usercontent.google.com/download"
    "?id=1B9A9UCJYMwTL4oBEo4RZfbMZMaZhKJaz&export=download&confirm=t"
)
OUTPUT_DIR = "outputs"  # model, history, plots and metrics land here
IMAGE_SIZE = 512  # side of the square training input; a multiple of 16
BATCH_SIZE = 4  # images per training step
NUM_CLASSES = 20  # background plus 19 human parts
NUM_TRAIN_IMAGES = 200  # first N sorted training files
NUM_VAL_IMAGES = 50  # the next N files, never trained on
EPOCHS = 25  # passes over the training images
LEARNING_RATE = 1e-3  # Adam's step size
SEED = 42  # makes data order, augmentation and initial weights repeatable
CLASS_NAMES = toy_people.CLASS_NAMES  # CIHP's 20 class names, id order
# A first run on a laptop CPU: synthetic data, small images, a few epochs.
QUICK = dict(image_size=96, batch_size=8, epochs=5, num_train_images=96,
             num_val_images=16, weights="none")  # fmt: skip

"""
## Downloading the data

CIHP has 38,280 images of people, each labelled pixel by pixel. We train on a small
subset, which is enough to see the model learn. `--download` fetches and extracts
the official zip, like this shell block:
"""

"""shell
gdown "1B9A9UCJYMwTL4oBEo4RZfbMZMaZhKJaz&confirm=t"
unzip -q instance-level-human-parsing.zip
"""

"""
The extracted folder holds `Training/Images/*.jpg`, the matching label masks in
`Training/Category_ids/*.png` (one class id per pixel) and `human_colormap.mat`, the
colour of each class. Without CIHP on disk the script writes a synthetic set of
cartoon people in the very same layout.
"""


def download_cihp(data_dir):
    """Fetch the CIHP zip with a progress bar and extract it into data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        archive = keras.utils.get_file(
            "instance-level-human-parsing.zip", CIHP_URL, cache_dir=data_dir,
            cache_subdir=".",
        )  # fmt: skip
    except Exception as error:  # get_file wraps every network failure this way
        raise UserError(
            f"could not download CIHP into {data_dir} ({error}); check the network, "
            "or download the zip by hand (see README) and pass --data-dir"
        ) from None
    # Extract beside the target, then move into place: never a half-extracted set.
    staging = data_dir / ".extracting"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(staging)
    for entry in staging.iterdir():
        shutil.rmtree(data_dir / entry.name, ignore_errors=True)
        os.replace(entry, data_dir / entry.name)
    staging.rmdir()


def get_data_root(data_dir, download, num_images, prefer_synthetic=False):
    """Return the CIHP root to train on, falling back to the synthetic set."""
    if download:
        download_cihp(Path(data_dir or DATA_DIR))
    if data_dir is None and (prefer_synthetic or not DATA_DIR.exists()):
        print(
            f"No CIHP data in {DATA_DIR}: training on the synthetic toy-people set "
            f"in {TOY_DATA_DIR} (add --download to fetch CIHP, about 2.7 GB)."
        )
        return toy_people.ensure(TOY_DATA_DIR, num_images=max(250, num_images))
    return checks.find_cihp_root(data_dir or DATA_DIR)


def load_colormap(root, num_classes):
    """Read the class colours from human_colormap.mat as 0..255 integers."""
    path = Path(root) / "human_colormap.mat"
    if not path.exists():
        print(f"No {path}: using the built-in CIHP palette.")
        return toy_people.CIHP_PALETTE[:num_classes]
    try:
        colormap = np.asarray(loadmat(path)["colormap"], dtype=np.float64)
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise UserError(f"cannot read a colormap from {path} ({error})") from None
    if (
        colormap.shape != (num_classes, 3)
        or not ((colormap >= 0) & (colormap <= 1)).all()
    ):
        raise UserError(
            f"{path} holds a colormap of shape {colormap.shape}; expected "
            f"({num_classes}, 3) values in [0, 1]. Delete it to use the built-in one"
        )
    # Scale by 255, not 100 as the original did: full-strength colours.
    return np.round(colormap * 255).astype(np.uint8)


"""
## Creating a TensorFlow Dataset

Images are decoded as 3 channels whatever their format and resized bilinearly.
Masks must be treated differently: their pixels are class *ids*, not intensities.
Bilinear resizing would blend a "Face" pixel (13) and a "Background" pixel (0)
into a 6 or a 7, a "Dress" or a "Coat", along every boundary: labels that are not
in the annotation. Nearest-neighbour resizing only ever copies an existing id.

Decoded, resized images are cached as `uint8` (4 bytes a pixel with the mask), so
every epoch after the first reads from memory. Training batches are shuffled, and
drop the last partial batch so every step has the same shape; validation keeps
every image so that its score is computed on all of them.

With 200 images a model soon memorises its training set, so training images are
*augmented*: randomly mirrored, zoomed in and cropped, and slightly recoloured.
Mirroring needs care in human parsing: a mirrored person's left arm becomes their
right arm, so the mask's left and right classes must swap too, or the model would
learn that left and right are the same thing. Masks stay integer throughout.
"""

# A mirrored person swaps sides: Left-arm (14) becomes Right-arm (15), and so on.
FLIP_CLASSES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 14, 17, 16, 19, 18]
# EXIF orientation 1..8 as (mirror first?, quarter turns counter-clockwise).
EXIF_TRANSFORMS = [
    (0, 0),
    (0, 0),
    (1, 0),
    (0, 2),
    (1, 2),
    (1, 1),
    (0, 3),
    (1, 3),
    (0, 1),
]


def decode_image(image_path, orientation=1):
    """Decode JPEG or PNG (grey, RGB, RGBA, 16-bit) to RGB, upright as displayed."""
    image = tf_image.decode_image(
        tf_io.read_file(image_path), channels=3, expand_animations=False
    )
    transform = tf_gather(EXIF_TRANSFORMS, orientation)
    image = tf_where(transform[0] > 0, tf_image.flip_left_right(image), image)
    return tf_image.rot90(image, transform[1])


def read_image(image_path, image_size, mask=False, orientation=1):
    """Read an image (bilinear resize) or a mask (nearest-neighbour) as uint8."""
    size = [image_size, image_size]
    if mask:
        mask = tf_image.decode_png(tf_io.read_file(image_path), channels=1)
        return tf_image.resize(mask, size, method="nearest")
    image = tf_image.resize(decode_image(image_path, orientation), size)
    return tf_cast(tf_math.round(image), "uint8")


def load_data(image_path, mask_path, orientation, image_size):
    """Load one (image, mask) training pair."""
    image = read_image(image_path, image_size, orientation=orientation)
    return image, read_image(mask_path, image_size, mask=True)


def mirror(image, mask):
    """Flip left-right; a mirrored person's left parts become right parts."""
    mask = tf_image.flip_left_right(mask)
    swapped = tf_gather(tf_cast(FLIP_CLASSES, "uint8"), tf_cast(mask, "int32"))
    return tf_image.flip_left_right(image), swapped


def augment(image, mask, image_size):
    """Random mirror (swapping left and right), zoom-and-crop, colour jitter."""
    coin = tf_random.uniform(()) < 0.5
    mirrored_image, mirrored_mask = mirror(image, mask)
    image = tf_where(coin, mirrored_image, image)
    mask = tf_where(coin, mirrored_mask, mask)
    zoomed = tf_cast(image_size * tf_random.uniform((), 1.0, 1.5), "int32")
    image = tf_image.resize(image, [zoomed, zoomed])
    mask = tf_image.resize(mask, [zoomed, zoomed], method="nearest")
    crop = tf_image.random_crop(
        tf_concat([image, tf_cast(mask, "float32")], axis=-1),
        [image_size, image_size, 4],
    )
    image = tf_image.random_brightness(crop[..., :3] / 255, 0.1)
    image = tf_image.random_saturation(
        tf_image.random_contrast(image, 0.8, 1.2), 0.8, 1.2
    )
    image = tf_cast(
        tf_math.round(tf_math.minimum(tf_math.maximum(image, 0), 1) * 255), "uint8"
    )
    return image, tf_cast(crop[..., 3:], "uint8")


def to_model_inputs(image, mask):
    """Cast a batch to what the model expects: float images, integer labels."""
    return tf_cast(image, "float32"), tf_cast(mask, "int32")


def data_generator(
    pairs, orientations, image_size, batch_size, training, augmented=False, cache=True
):
    """Build the tf.data pipeline: decode, resize, cache, shuffle, batch, prefetch."""
    images, masks = zip(*pairs)
    dataset = tf_data.Dataset.from_tensor_slices(
        (list(images), list(masks), orientations)
    )
    if training and not cache:  # shuffle file names, not decoded images
        dataset = dataset.shuffle(len(pairs), reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda i, m, o: load_data(i, m, o, image_size),
        num_parallel_calls=tf_data.AUTOTUNE,
    )
    if cache:
        dataset = dataset.cache()
        if training:
            dataset = dataset.shuffle(len(pairs), reshuffle_each_iteration=True)
    if augmented:
        dataset = dataset.map(
            lambda i, m: augment(i, m, image_size), num_parallel_calls=tf_data.AUTOTUNE
        )
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.map(to_model_inputs).prefetch(tf_data.AUTOTUNE)


"""
## Building the DeepLabV3+ model

DeepLabV3+ reuses a ResNet50 pretrained on ImageNet. Its ImageNet preprocessing
(RGB to BGR, subtract the mean pixel) sits inside the model, so the model takes raw
0..255 pixels. We tap two layers of the backbone: `conv4_block6_2_relu`, at 1/16 of
the input, feeds the encoder; `conv2_block3_2_relu`, at 1/4, gives the decoder its
low-level detail.

The *Dilated Spatial Pyramid Pooling* module looks at the encoder features five
ways at once: globally (average pooling of the whole map, broadcast back), with a
1x1 convolution, and with 3x3 convolutions dilated by 6, 12 and 18. A 1x1 block
fuses the five views.

On small inputs a dilation can be as large as the feature map itself (a 96x96
image gives a 6x6 map): then the eight outer taps of each 3x3 kernel only ever
read the zero padding, and the convolution is exactly a 1x1 convolution with the
kernel's centre. `AtrousConv2D` computes just that in such a case, with the same
weights, which makes small-image runs on a CPU several times faster.
"""


@keras.saving.register_keras_serializable(package="deeplabv3_plus")
class AtrousConv2D(layers.Conv2D):
    """A dilated convolution that skips the taps that can only read padding."""

    def call(self, inputs):
        rate_y, rate_x = self.dilation_rate
        small_map = rate_y >= inputs.shape[1] and rate_x >= inputs.shape[2]
        if self.kernel_size != (3, 3) or min(self.dilation_rate) == 1 or not small_map:
            return super().call(inputs)
        # With a dilation as large as the map, every off-centre tap of a 3x3
        # kernel falls in the zero padding: only the centre tap sees data.
        centre = self.kernel[1:2, 1:2]
        outputs = ops.conv(inputs, centre, strides=1, padding="valid")
        return ops.add(outputs, self.bias) if self.use_bias else outputs


def convolution_block(
    block_input, num_filters=256, kernel_size=3, dilation_rate=1, use_bias=False
):
    """Convolution, batch normalisation, ReLU."""
    x = AtrousConv2D(
        num_filters,
        kernel_size=kernel_size,
        dilation_rate=dilation_rate,
        padding="same",
        use_bias=use_bias,
        kernel_initializer=keras.initializers.HeNormal(),
    )(block_input)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def DilatedSpatialPyramidPooling(dspp_input):
    """Pool the features globally and at dilation rates 1, 6, 12 and 18; fuse."""
    dims = dspp_input.shape
    x = layers.AveragePooling2D(pool_size=(dims[-3], dims[-2]))(dspp_input)
    x = convolution_block(x, kernel_size=1, use_bias=True)
    out_pool = layers.UpSampling2D(
        size=(dims[-3] // x.shape[1], dims[-2] // x.shape[2]),
        interpolation="bilinear",
    )(x)
    out_1 = convolution_block(dspp_input, kernel_size=1, dilation_rate=1)
    out_6 = convolution_block(dspp_input, kernel_size=3, dilation_rate=6)
    out_12 = convolution_block(dspp_input, kernel_size=3, dilation_rate=12)
    out_18 = convolution_block(dspp_input, kernel_size=3, dilation_rate=18)
    x = layers.Concatenate(axis=-1)([out_pool, out_1, out_6, out_12, out_18])
    return convolution_block(x, kernel_size=1)


"""
The decoder upsamples the encoder output by 4 and concatenates it with the
low-level features, projected to 48 channels so they do not drown the encoder's 256.
Two 3x3 blocks refine the mix; a 1x1 convolution turns each pixel's 256 features
into 20 class scores (logits).

One exact rewrite saves a lot of work. The original upsamples the 256-channel
features to full size and then applies the 1x1 classifier. But bilinear upsampling
computes each output pixel as a weighted average of input pixels (weights summing
to 1), and a 1x1 convolution is an affine map applied to each pixel alone; the two
commute. Classifying at 1/4 resolution and upsampling the 20 logits gives the same
function with the same parameters, while never building a 512x512x256 tensor.
`classify_then_upsample=False` builds the original order; a test checks that both
give the same output.
"""


def DeeplabV3Plus(
    image_size, num_classes, backbone_weights=None, classify_then_upsample=True
):
    """Build DeepLabV3+ on a ResNet50 backbone; returns logits at input size."""
    model_input = keras.Input(shape=(image_size, image_size, 3))
    preprocessed = keras.applications.resnet50.preprocess_input(model_input)
    resnet50 = keras.applications.ResNet50(
        weights=backbone_weights, include_top=False, input_tensor=preprocessed
    )
    x = resnet50.get_layer("conv4_block6_2_relu").output
    x = DilatedSpatialPyramidPooling(x)
    input_a = layers.UpSampling2D(
        size=(image_size // 4 // x.shape[1], image_size // 4 // x.shape[2]),
        interpolation="bilinear",
    )(x)
    input_b = resnet50.get_layer("conv2_block3_2_relu").output
    input_b = convolution_block(input_b, num_filters=48, kernel_size=1)
    x = layers.Concatenate(axis=-1)([input_a, input_b])
    x = convolution_block(convolution_block(x))
    # Logits stay float32 under mixed precision, so the loss is computed exactly.
    classify = layers.Conv2D(
        num_classes, kernel_size=1, padding="same", dtype="float32"
    )
    upsample = layers.UpSampling2D(
        size=(image_size // x.shape[1], image_size // x.shape[2]),
        interpolation="bilinear",
        dtype="float32",
    )
    x = upsample(classify(x)) if classify_then_upsample else classify(upsample(x))
    return keras.Model(inputs=model_input, outputs=x)


RESNET50_WEIGHTS = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET50_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"


def fetch_backbone_weights():
    """Download (once) Keras's ImageNet ResNet50 weights; return the file's path."""
    cache_dir = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return keras.utils.get_file(
            RESNET50_WEIGHTS, RESNET50_URL + RESNET50_WEIGHTS, cache_dir=cache_dir,
            cache_subdir="models", file_hash="4d473c1dd8becc155b73f8504c6f6626",
        )  # fmt: skip
    except Exception as error:  # get_file wraps every network failure this way
        raise UserError(
            f"could not download the ImageNet ResNet50 weights ({error}); train from "
            f"scratch with --weights none, or put the file at "
            f"{cache_dir / 'models' / RESNET50_WEIGHTS}"
        ) from None


def build_model(image_size, num_classes, weights):
    """Build the model with ImageNet, random, or the user's saved weights."""
    imagenet = fetch_backbone_weights() if weights == "imagenet" else None
    model = DeeplabV3Plus(image_size, num_classes, backbone_weights=imagenet)
    if weights not in ("imagenet", "none"):
        if not Path(weights).is_file():
            raise UserError(f"weights file {weights} does not exist; check --weights")
        try:
            model.load_weights(weights)
        except (ValueError, OSError, KeyError) as error:
            raise UserError(
                f"cannot load --weights {weights} into a {image_size}x{image_size}, "
                f"{num_classes}-class DeepLabV3+ ({str(error)[:200]}); pass a "
                ".keras or .weights.h5 file saved by this script"
            ) from None
    return model


"""
## Training

The model ends in logits, so the loss is `SparseCategoricalCrossentropy` with
`from_logits=True`, which compares each pixel's 20 scores with its integer label.

Pixel accuracy alone flatters a segmentation model: background covers most pixels,
so a model that predicts only background already scores high. *Mean IoU* averages,
over the classes, the overlap between predicted and true regions divided by their
union, so a tiny class like Sunglasses counts as much as Background. Keras
accumulates it from a confusion matrix over the whole epoch.

Keras compiles the training step with XLA where that pays off (`jit_compile="auto"`:
always on JAX, on TensorFlow only with a GPU). With `--precision mixed_bfloat16`
(the default on GPUs) layers compute in bfloat16 and keep float32 weights.
"""


def make_optimizer(learning_rate, schedule, total_steps):
    """Adam at a constant rate, or with DeepLab's polynomial decay (power 0.9)."""
    if schedule == "poly":
        learning_rate = keras.optimizers.schedules.PolynomialDecay(
            learning_rate, decay_steps=total_steps, end_learning_rate=0.0, power=0.9
        )
    return keras.optimizers.Adam(learning_rate=learning_rate)


def compile_model(model, optimizer, num_classes):
    """Attach the loss, the optimizer and the pixel accuracy and mean IoU metrics."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.MeanIoU(num_classes, sparse_y_pred=False, name="mean_iou"),
        ],
        jit_compile="auto",
    )


class ProgressLog(keras.callbacks.Callback):
    """Print one line per epoch and time the training steps (not validation)."""

    def __init__(self, images_per_epoch, epochs):
        super().__init__()
        self.images_per_epoch, self.epochs, self.seconds = images_per_epoch, epochs, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self.seconds.append(time.perf_counter() - self.start)

    def on_epoch_end(self, epoch, logs=None):
        print(
            f"epoch {epoch + 1}/{self.epochs}  loss {logs['loss']:.4f}  "
            f"val_loss {logs['val_loss']:.4f}  "
            f"val_accuracy {logs['val_accuracy']:.3f}  "
            f"val_mean_iou {logs['val_mean_iou']:.3f}  "
            f"{self.images_per_epoch / self.seconds[-1]:.1f} images/s",
            flush=True,
        )

    def images_per_second(self):
        """Training throughput, leaving out the first epoch (it compiles) if we can."""
        steady = self.seconds[1:] or self.seconds
        return self.images_per_epoch / statistics.median(steady) if steady else 0.0


def plot_history(history, path):
    """Save loss, accuracy and mean IoU curves, train against validation."""
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, metric in zip(axes, ["loss", "accuracy", "mean_iou"]):
        ax.plot(epochs, [row[metric] for row in history], label="train")
        ax.plot(epochs, [row[f"val_{metric}"] for row in history], label="validation")
        ax.set(title=metric.replace("_", " "), xlabel="epoch")
        ax.legend()
    save_figure(figure, path)


def save_figure(figure, path):
    """Write a Matplotlib figure to PNG atomically and close it."""
    import matplotlib.pyplot as plt

    with training_state.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight", dpi=100)
    plt.close(figure)


"""
## Inference using Colormap Overlay

The model outputs 20 logits per pixel; the predicted class is the largest. To look
at a prediction we paint each class with its colour from `human_colormap.mat` and
blend that colour mask over the photo.
"""


def infer(model, image_tensor):
    """Predict the class id of every pixel of one image."""
    logits = model.predict_on_batch(np.expand_dims(image_tensor, axis=0))
    return np.argmax(np.asarray(logits)[0], axis=-1)


def decode_segmentation_masks(mask, colormap, n_classes):
    """Paint each class id with its colour: (H, W) ids to (H, W, 3) uint8."""
    return np.asarray(colormap, dtype=np.uint8)[np.clip(mask, 0, n_classes - 1)]


def get_overlay(image, colored_mask):
    """Blend the colour mask over the image: 35% image, 65% mask."""
    image = np.asarray(image, dtype=np.uint8)
    return cv2.addWeighted(image, 0.35, colored_mask, 0.65, 0)


def plot_predictions(dataset, colormap, model, path, title, count=4):
    """Save a figure of image | overlay | colour mask for the first images."""
    import matplotlib.pyplot as plt

    images = np.concatenate([np.asarray(x) for x, _ in dataset.take(count)])[:count]
    figure, axes = plt.subplots(
        len(images), 3, figsize=(9, 3 * len(images)), squeeze=False
    )
    for row, image in zip(axes, images):
        colored = decode_segmentation_masks(
            infer(model, image), colormap, len(colormap)
        )
        panels = [image.astype(np.uint8), get_overlay(image, colored), colored]
        for ax, panel, name in zip(row, panels, ["image", "overlay", "prediction"]):
            ax.imshow(panel)
            ax.set_title(name)
            ax.axis("off")
    figure.suptitle(title)
    save_figure(figure, path)


"""
### Inference on Train Images

The model has seen these images, so they show how well it fits its training data.

### Inference on Validation Images

These it has never seen: how well they look is how well the model generalises.
"""


def save_inference_figures(model, train_dataset, val_dataset, colormap, output_dir):
    """Plot predictions for 4 training and 4 validation images."""
    plot_predictions(
        train_dataset, colormap, model, output_dir / "predictions_train.png",
        "Inference on train images",
    )  # fmt: skip
    plot_predictions(
        val_dataset, colormap, model, output_dir / "predictions_val.png",
        "Inference on validation images",
    )  # fmt: skip


"""
## Evaluating at full resolution

The validation scores during training are computed on images squeezed to the
training size. Human-parsing papers report CIHP results at each image's original
resolution instead, so that is what the final evaluation does: predict at the
training size, resize the 20 logits back to the original size bilinearly (smooth
scores, not hard ids), and only then take the argmax. All scores come from one
confusion matrix over the whole validation set.
"""


def predict_full_resolution(model, image_path, image_size, orientation=1):
    """Return the original image and its predicted class ids at the same size."""
    image = np.asarray(decode_image(image_path, orientation))
    small = np.asarray(read_image(image_path, image_size, orientation=orientation))
    logits = np.asarray(model.predict_on_batch(small[None].astype("float32")))[0]
    logits = cv2.resize(logits, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    return image, np.argmax(logits.reshape(*image.shape[:2], -1), axis=-1)


def read_mask(mask_path, shape):
    """Read a mask at its image's size (nearest-neighbour if the sizes differ)."""
    mask = np.asarray(tf_image.decode_png(tf_io.read_file(mask_path), channels=1))[
        ..., 0
    ]
    if mask.shape != tuple(shape):
        mask = cv2.resize(mask, shape[::-1], interpolation=cv2.INTER_NEAREST)
    return mask


def evaluate(model, pairs, orientations, image_size, output_dir):
    """Score the model on full-size images; write evaluation.json and two plots."""
    import matplotlib.pyplot as plt

    matrix = np.zeros((len(CLASS_NAMES),) * 2, dtype=np.int64)
    for (image_path, mask_path), orientation in zip(pairs, orientations):
        image, predicted = predict_full_resolution(
            model, image_path, image_size, orientation
        )
        truth = read_mask(mask_path, image.shape[:2])
        matrix += evaluation.confusion_matrix(truth, predicted, len(CLASS_NAMES))
    metrics = evaluation.segmentation_metrics(matrix, CLASS_NAMES)
    training_state.write_json(output_dir / "evaluation.json", metrics)
    figure, axes = plt.subplots(figsize=(7, 7))
    evaluation.plot_per_class_iou(metrics["per_class_iou"], axes)
    save_figure(figure, output_dir / "per_class_iou.png")
    figure, axes = plt.subplots(figsize=(9, 8))
    evaluation.plot_confusion_matrix(matrix, CLASS_NAMES, figure, axes)
    save_figure(figure, output_dir / "confusion_matrix.png")
    return metrics


"""
## Segmenting your own photos

`--predict photo.jpg [more.jpg | folder ...] --model outputs/model.keras` runs the
trained model on any image the pipeline reads and writes, at the photo's own size,
the colour mask and the overlay.
"""


def predict_photos(model, paths, colormap, output_dir):
    """Write mask and overlay PNGs for each photo; print the classes found."""
    image_size = model.input_shape[1]
    files = [
        f
        for p in map(Path, paths)
        for f in (sorted(p.iterdir()) if p.is_dir() else [p])
    ]
    photos = [f for f in files if f.suffix.lower() in checks.IMAGE_EXTENSIONS]
    if not photos:
        raise UserError(f"no .jpg or .png images in {' '.join(paths)}; check --predict")
    for photo in photos:
        if not photo.is_file():
            raise UserError(f"photo {photo} does not exist; check --predict")
        orientation = checks.check_image(photo)
        image, predicted = predict_full_resolution(
            model, str(photo), image_size, orientation
        )
        colored = decode_segmentation_masks(predicted, colormap, len(colormap))
        for suffix, picture in [
            ("mask", colored),
            ("overlay", get_overlay(image, colored)),
        ]:
            with training_state.atomic_path(
                output_dir / f"{photo.stem}_{suffix}.png"
            ) as tmp:
                if not cv2.imwrite(str(tmp), picture[..., ::-1]):
                    raise UserError(f"cannot write {tmp.name[5:]} into {output_dir}")
        shares = evaluation.class_shares(predicted, CLASS_NAMES)
        print(f"{photo}: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))


"""
## Putting it all together

`main()` wires the steps above into one run. Every run writes into `--output-dir`:
the model (`model.keras`, and `best_model.keras` by validation mean IoU), the
per-epoch `history.csv` and `training_curves.png`, prediction figures,
`metrics.json` and the full-resolution `evaluation.json` with its plots. A
checkpoint is committed after every epoch, so `--resume` continues an interrupted
run where it stopped.
"""


def parse_args(argv=None):
    """Read the command line; defaults come from the constants above."""
    parser = argparse.ArgumentParser(description="Train DeepLabV3+ on CIHP.")
    add, flag = parser.add_argument, "store_true"
    both = argparse.BooleanOptionalAction
    add("--data-dir", help="CIHP folder (default: data/, else synthetic data)")
    add("--download", action=flag, help="download and extract CIHP first")
    add("--output-dir", default=OUTPUT_DIR, help="where outputs go (%(default)s)")
    add("--image-size", type=int, help=f"input side, multiple of 16 ({IMAGE_SIZE})")
    add("--batch-size", type=int, help=f"global batch size ({BATCH_SIZE})")
    add("--epochs", type=int, help=f"training epochs ({EPOCHS})")
    add("--num-train-images", type=int, help=f"first N files ({NUM_TRAIN_IMAGES})")
    add("--num-val-images", type=int, help=f"next N files ({NUM_VAL_IMAGES})")
    add("--learning-rate", type=float, default=LEARNING_RATE, help="Adam (%(default)s)")
    add("--lr-schedule", choices=["constant", "poly"], default="constant",
        help="constant, or DeepLab's polynomial decay (%(default)s)")  # fmt: skip
    add("--weights", help="imagenet, none, or a .keras/.weights.h5 file (imagenet)")
    add("--precision", default="auto", help="bfloat16 on GPUs, else float32 (auto)",
        choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"])  # fmt: skip
    add("--augment", action=both, default=True, help="augment training images (on)")
    add("--cache", action=both, default=True, help="cache decoded images (on)")
    add("--distribute", action=flag, help="data-parallel over all local devices")
    add("--seed", type=int, default=SEED, help="random seed (%(default)s)")
    add("--resume", action=flag, help="continue the interrupted run in --output-dir")
    add("--overwrite", action=flag, help="replace an earlier run in --output-dir")
    add("--evaluate", metavar="MODEL", help="only evaluate this .keras model")
    add("--predict", nargs="+", metavar="IMAGE", help="only segment these photos")
    add("--model", default=f"{OUTPUT_DIR}/model.keras", help="model for --predict")
    add("--show", action=flag, help="also open the plots in a window")
    add("--quick", action=flag, help="a first run in minutes on a CPU")
    args = parser.parse_args(argv)
    args.epochs_given = args.epochs is not None
    preset = QUICK if args.quick else {}  # explicit flags beat the preset
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, preset.get(name, default))
    return args


# What an unset flag means without --quick.
DEFAULTS = dict(image_size=IMAGE_SIZE, batch_size=BATCH_SIZE, epochs=EPOCHS,
                num_train_images=NUM_TRAIN_IMAGES, num_val_images=NUM_VAL_IMAGES,
                weights="imagenet")  # fmt: skip


def prepare_data(args):
    """Find, pair and validate the data; return the root and both splits."""
    wanted = args.num_train_images + args.num_val_images
    quick = args.quick and not args.download  # --quick trains on synthetic data
    root = get_data_root(args.data_dir, args.download, wanted, prefer_synthetic=quick)
    train, val = checks.list_pairs(root, args.num_train_images, args.num_val_images)
    # Decode every chosen file once now, so a bad one stops us before training.
    orientations = checks.validate_pairs(train + val, NUM_CLASSES)
    return root, (train, orientations[: len(train)]), (val, orientations[len(train) :])


def build_or_resume(args, state, output_dir, steps_per_epoch):
    """Build and compile a new model, or reload the last committed checkpoint."""
    if state["completed_epochs"]:
        return keras.saving.load_model(output_dir / "checkpoints" / state["checkpoint"])
    model = build_model(args.image_size, NUM_CLASSES, args.weights)
    total_steps = args.epochs * steps_per_epoch
    optimizer = make_optimizer(args.learning_rate, args.lr_schedule, total_steps)
    compile_model(model, optimizer, NUM_CLASSES)
    return model


def training_run(args):
    """Train, then write the model, curves, figures and metrics."""
    state = training_state.start_or_resume(args)
    root, (train_pairs, train_orient), (val_pairs, val_orient) = prepare_data(args)
    colormap = load_colormap(root, NUM_CLASSES)
    output_dir = checks.check_output_dir(args.output_dir)
    if not args.resume:  # --overwrite: forget the earlier run entirely
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
        for name in [training_state.STATE_FILE, "model.keras", "best_model.keras"]:
            (output_dir / name).unlink(missing_ok=True)
        state["config"] = {k: getattr(args, k) for k in training_state.RUN_CONFIG}
    state["config"]["epochs"] = args.epochs
    size, batch = args.image_size, args.batch_size
    train_dataset = data_generator(
        train_pairs, train_orient, size, batch, True, args.augment, args.cache
    )
    val_dataset = data_generator(
        val_pairs, val_orient, size, batch, False, cache=args.cache
    )
    steps_per_epoch = len(train_pairs) // batch
    with devices.distribution_scope(args.distribute, batch):
        model = build_or_resume(args, state, output_dir, steps_per_epoch)
    progress = ProgressLog(steps_per_epoch * batch, args.epochs)
    checkpoint = training_state.RunCheckpoint(output_dir, state)
    start = time.perf_counter()
    try:
        model.fit(
            train_dataset, validation_data=val_dataset, epochs=args.epochs,
            initial_epoch=state["completed_epochs"], callbacks=[progress, checkpoint],
            shuffle=False,  # the tf.data pipeline shuffles already
            verbose=0,
        )  # fmt: skip
    finally:
        state["train_seconds"] += time.perf_counter() - start
        if state["completed_epochs"]:
            training_state.write_json(output_dir / training_state.STATE_FILE, state)
    splits = (train_pairs, train_orient), (val_pairs, val_orient)
    report(model, state, progress, splits, val_dataset, colormap, args)


def report(model, state, progress, splits, val_dataset, colormap, args):
    """Write metrics.json, curves, prediction figures and the full evaluation."""
    output_dir, size = Path(args.output_dir), args.image_size
    scores = model.evaluate(val_dataset, return_dict=True, verbose=0)
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for images, masks in val_dataset.as_numpy_iterator():
        predicted = np.argmax(np.asarray(model.predict_on_batch(images)), axis=-1)
        matrix += evaluation.confusion_matrix(masks, predicted, NUM_CLASSES)
    images_per_second = progress.images_per_second()
    metrics = {
        "val_loss": scores["loss"],
        "val_accuracy": scores["accuracy"],
        "val_mean_iou": scores["mean_iou"],
        "per_class_iou": evaluation.segmentation_metrics(matrix, CLASS_NAMES)[
            "per_class_iou"
        ],
        "train_seconds": round(state["train_seconds"], 2),
        "images_per_second": round(images_per_second, 2),
    }  # fmt: skip
    training_state.write_json(output_dir / "metrics.json", metrics)
    plot_history(state["history"], output_dir / "training_curves.png")
    (train_pairs, train_orient), (val_pairs, val_orient) = splits
    train_preview = data_generator(train_pairs[:4], train_orient[:4], size, 4, False)
    save_inference_figures(model, train_preview, val_dataset, colormap, output_dir)
    full = evaluate(model, val_pairs, val_orient, size, output_dir)
    print(
        f"Done in {state['train_seconds']:.0f} s of training "
        f"({images_per_second:.1f} images/s). Validation at {size}px: accuracy "
        f"{scores['accuracy']:.3f}, mean IoU {scores['mean_iou']:.3f}; at full "
        f"resolution: mean IoU {full['mean_iou']:.3f}. Outputs in {output_dir}/."
    )


def load_trained_model(path, flag):
    """Load a .keras model saved by this script, or explain why not."""
    if not Path(path).is_file():
        raise UserError(
            f"model file {path} does not exist; check {flag} (train first?)"
        )
    try:
        return keras.saving.load_model(path)
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise UserError(
            f"cannot load model {path} ({str(error)[:200]}); check {flag}"
        ) from None


def run(args):
    """Do what the command line asks: train, evaluate or predict."""
    checks.check_args(args)
    keras.utils.set_random_seed(args.seed)
    keras.config.set_dtype_policy(devices.choose_precision(args.precision))
    if args.predict:
        model = load_trained_model(args.model, "--model")
        output_dir = checks.check_output_dir(args.output_dir)
        colormap = toy_people.CIHP_PALETTE  # the same colours as human_colormap.mat
        if args.data_dir:
            colormap = load_colormap(args.data_dir, NUM_CLASSES)
        return predict_photos(model, args.predict, colormap, output_dir)
    if args.evaluate:
        model = load_trained_model(args.evaluate, "--evaluate")
        root = get_data_root(args.data_dir, args.download, 0)
        _, val_pairs = checks.list_pairs(
            root, args.num_train_images, args.num_val_images
        )
        output_dir = checks.check_output_dir(args.output_dir)
        metrics = evaluate(
            model,
            val_pairs,
            checks.validate_pairs(val_pairs, NUM_CLASSES),
            model.input_shape[1],
            output_dir,
        )
        return print(
            json.dumps({k: v for k, v in metrics.items() if k != "per_class_iou"})
        )
    training_run(args)
    if args.show:
        show_plots(Path(args.output_dir))


def show_plots(output_dir):
    """Open every saved plot in a window (asked for with --show)."""
    import matplotlib.pyplot as plt

    for path in sorted(output_dir.glob("*.png")):
        plt.figure(path.name)
        plt.imshow(plt.imread(path))
        plt.axis("off")
    plt.show()


def main(args):
    """Run, turning user errors and interruptions into one clear line."""
    if not args.show:  # write PNGs only; never wait on a window
        matplotlib.use("Agg")
    training_state.interrupt_on_sigterm()
    try:
        run(args)
    except UserError as error:
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        sys.exit(2)
    except training_state.NonFiniteLoss as error:
        print(
            f"error: {error}; the last good epoch is saved in {args.output_dir}. Lower "
            "--learning-rate, then continue with --resume", file=sys.stderr,
        )  # fmt: skip
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            f"\nInterrupted. Completed epochs are saved in {args.output_dir}; continue "
            f"with: python {Path(__file__).name} --resume "
            f"--output-dir {args.output_dir}",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    main(parse_args())
