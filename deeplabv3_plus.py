"""
Title: Multiclass semantic segmentation using DeepLabV3+
Author: [Soumik Rakshit](http://github.com/soumik12345); Keras 3 rendition
Date created: 2021/08/31
Last modified: 2026/12/07
Description: Train DeepLabV3+ to label each pixel: background or one of 19 human parts.
Accelerator: GPU
"""

"""
## Introduction

Semantic segmentation assigns a class to every pixel of an image. Here the classes are
those of [Crowd Instance-level Human Parsing (CIHP)](https://arxiv.org/abs/1811.12596):
the background and 19 human parts (hair, face, left arm, right shoe, ...).

[DeepLabV3+](https://arxiv.org/abs/1802.02611) is an encoder-decoder network. Its
encoder, [DeepLabV3](https://arxiv.org/abs/1706.05587), reads backbone features at 1/16
of the input (an *output stride* of 16) through *atrous* (dilated) convolutions: a
dilated 3x3 convolution spreads its nine taps over a wider window, so it sees more
context with no extra parameters and no loss of resolution. The decoder upsamples the
result and mixes in sharp low-level features to recover crisp boundaries.

This file is a script, a notebook and a module: each section defines functions,
then runs them under `if RUN:`, so `import deeplabv3_plus` runs nothing. The
plumbing (downloads, file checks, flags, resuming, errors) lives in `deeplab_support`.
"""

"""
## Setup
"""

# The support package comes first: it keeps TensorFlow's start-up logs quiet.
from deeplab_support import cli, datasets, devices, export, files, metrics, runs, video
from deeplab_support import progress_bar
from deeplab_support.classes import read_class_map
from data import make_toy_people  # the synthetic set, for a run without CIHP

import cv2
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import layers, ops
from scipy.special import softmax
from tensorflow import data as tf_data, dtypes as tf_dtypes, gather as tf_gather
from tensorflow import ensure_shape as tf_ensure_shape, image as tf_image, io as tf_io
from tensorflow import math as tf_math, pad as tf_pad, random as tf_random
from tensorflow import range as tf_range, shape as tf_shape, Variable as tf_Variable

DEFAULTS = dict(  # what the flags default to; --quick changes some (see --help)
    image_size=512,  # side of the square training input; a multiple of 16
    batch_size=4,  # images per training step
    num_train_images=200,  # the first N images of CIHP's training folder
    num_val_images=50,  # the next N images, never trained on
    epochs=25,  # passes over the training images
    learning_rate=1e-3,  # Adam's step size
    lr_schedule="constant",  # or "poly" (DeepLab's decay) or "cosine" (warm-up first)
    weights="imagenet",  # the backbone starts from ImageNet ("none": from scratch)
    freeze_backbone=False,  # train only the encoder and decoder, not the ResNet50
    keep_aspect=False,  # fit photos into the square unsquashed, padded with void
    augment=True,  # mirror, zoom and recolour the training images
    loss="crossentropy",  # or "dice", "focal" or "crossentropy+dice"
    class_weights=False,  # weigh rare classes more in the loss
    seed=42,  # repeatable data order, augmentation and initial weights
    precision="auto",  # 16-bit where the chip computes it natively
    cache=True,  # keep decoded images in memory
    val_split="train-tail",  # validate on the images after the training ones
    ignore_index=255,  # the void label: in no loss and no score
    tta="none",  # "flip": also predict the mirrored image
    tta_scales="1",  # multiples of the input size to predict at
    temporal_smoothing=0.0,  # --predict on a video: how much a frame keeps of the last
    output_dir="outputs",  # where every output goes
)
IMAGENET_MEAN_BGR = [-103.939, -116.779, -123.68]  # ResNet50's mean pixel, negated

RUN = __name__ == "__main__"  # a script or a notebook; False when imported
if RUN:
    args = cli.parse_args(DEFAULTS)  # the flags, the preset, then DEFAULTS
    cli.start(args)  # check the flags, seed, pick the precision, read --resume

"""
## Downloading the data

CIHP has 38,280 images of people, each labelled pixel by pixel; a subset of it is enough
to see the model learn. `--download` fetches and extracts it, as these commands would
(2.7 GB, so only when asked; in a notebook, put `--download` in `sys.argv`):

```shell
gdown "1B9A9UCJYMwTL4oBEo4RZfbMZMaZhKJaz&confirm=t"
unzip -q instance-level-human-parsing.zip -d data/
```

It holds `Training/Images/*.jpg`, their class-id masks in `Training/Category_ids/` and
`human_colormap.mat`, each class's colour. Without CIHP on disk, a synthetic set of
cartoon people is written in the same layout, so everything below also runs offline.

**Your own data.** `--data-dir` also reads a Pascal VOC folder (or an annotation tool's
export in that layout), or `images/` and `masks/` folders with a `labelmap.txt` (see the
README). *Void* pixels (`--ignore-index`, 255 as in VOC) count in no loss and no score.
The data set's *class table* (names, colours, void id) travels in every saved model.
"""

if RUN and args.train:
    data = datasets.get_dataset(args, make_toy_people.ensure)  # CIHP, yours, or toys
    train_pairs, val_pairs = datasets.get_pairs(data, args)  # checked paths
    classes = data.classes  # names, colours, void id, mirrored classes

"""
## Creating a TensorFlow Dataset

Images are resized bilinearly, but masks must not be: their pixels are class *ids*, not
intensities, and blending "Face" (13) with "Background" (0) gives ids in between, such
as 6 ("Dress") or 7 ("Coat"). Nearest neighbour only copies existing ids.

With 200 images a model soon memorises them, so training images are *augmented*:
mirrored, zoomed and cropped, recoloured. Mirroring turns a left arm into a right arm,
so the mask's left and right classes swap too (the class table pairs them by name).

Squeezed into the square, a photo twice as wide as tall halves everyone's width.
`--keep-aspect` scales each photo to fit and pads it, black in the photo and void in the
mask; the saved model remembers, so predictions fit alike and drop the padding's logits.

Each epoch visits the images in a new order, a permutation drawn *statelessly* from
`--seed` and the epoch's number alone, as is each image's augmentation. Keras tells the
pipeline which epoch begins, so a run resumed at epoch 7 sees epoch 7's order, not epoch
1's again. The cache holds the decoded images as one batch, read in each epoch's order.

Last, each pixel gets a weight, 0 if void and 1 elsewhere: Keras multiplies the pixel's
loss by it, and the scores skip the pixels it zeroes.
"""


def fit(image, size, keep_aspect=False, method="bilinear", fill=0):
    """Resize to size x size: squashed, or (--keep-aspect) scaled to fit and padded."""
    image = tf_image.resize(image, fitted_shape(image, size, keep_aspect), method)
    return pad_square(image, size, fill)


def fitted_shape(image, size, keep_aspect=False):
    """size x size, or the image's height and width scaled to fit in it (rounded,
    as TensorFlow does, but never to 0: a 1x5000 strip stays a pixel wide)."""
    if not keep_aspect:
        return [size, size]
    shape = tf_dtypes.cast(tf_shape(image)[-3:-1], "float32")
    fitted = tf_math.round(size / tf_math.reduce_max(shape) * shape)
    return tf_dtypes.cast(tf_math.maximum(fitted, 1), "int32")


def pad_square(image, size, fill=0):
    """Pad an image to size x size at the bottom and right with `fill`."""
    height, width = tf_shape(image)[0], tf_shape(image)[1]
    padding = [[0, size - height], [0, size - width], [0, 0]]
    padded = tf_pad(image, padding, constant_values=fill)
    return tf_ensure_shape(padded, [size, size, image.shape[-1]])  # static, for Keras


def read_image(image_path, image_size, mask=False, keep_aspect=False, void=255):
    """Read an image (bilinear resize) or a mask (nearest neighbour) as uint8."""
    data = tf_io.read_file(image_path)
    if mask:  # padding, if any, is void
        mask = tf_image.decode_png(data, 1)
        return fit(mask, image_size, keep_aspect, "nearest", fill=void)
    # PNGs too; the exact DCT reads a JPEG as Pillow does for --predict and scores.
    image = tf_image.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    image = fit(image, image_size, keep_aspect)
    return tf_dtypes.saturate_cast(tf_math.round(image), "uint8")


def load_data(image_path, mask_path, image_size, classes):
    """Load one (image, mask) pair at the training size."""
    keep, void = classes.keep_aspect, classes.void  # void: the mask's padding
    image = read_image(image_path, image_size, keep_aspect=keep)
    return image, read_image(mask_path, image_size, True, keep, void)


def mirror(image, mask, flip_classes):
    """Flip left-right; a mirrored person's left parts become right parts."""
    # flip_classes maps Left-arm (14) to Right-arm (15) and so on; void stays void.
    lookup = list(flip_classes) + list(range(len(flip_classes), 256))
    swapped = tf_gather(tf_dtypes.cast(lookup, "uint8"), tf_dtypes.cast(mask, "int32"))
    return tf_image.flip_left_right(image), tf_image.flip_left_right(swapped)


def augment(image, mask, image_size, flip_classes, seed):
    """Random mirror, zoom-and-crop and colour jitter of one training pair."""
    seeds = tf_random.experimental.stateless_split(seed, 6)
    if tf_random.stateless_uniform((), seeds[0]) < 0.5:
        image, mask = mirror(image, mask, flip_classes)
    scale = tf_random.stateless_uniform((), seeds[1], 1.0, 1.5)
    zoomed = tf_dtypes.cast(image_size * scale, "int32")
    image = tf_image.resize(image, [zoomed, zoomed])
    mask = tf_image.resize(mask, [zoomed, zoomed], method="nearest")
    room = zoomed - image_size + 1
    corner = tf_random.stateless_uniform((2,), seeds[2], 0, room, "int32")
    top, left = corner[0], corner[1]
    image = tf_image.crop_to_bounding_box(image, top, left, image_size, image_size)
    mask = tf_image.crop_to_bounding_box(mask, top, left, image_size, image_size)
    image = tf_image.stateless_random_brightness(image / 255, 0.1, seeds[3])
    image = tf_image.stateless_random_contrast(image, 0.8, 1.2, seeds[4])
    image = tf_image.stateless_random_saturation(image, 0.8, 1.2, seeds[5])
    return tf_dtypes.saturate_cast(tf_math.round(image * 255), "uint8"), mask


def ignore_void(images, masks, void):
    """Give void pixels a weight of 0 (no loss, no score), a byte a pixel."""
    valid = tf_math.not_equal(masks[..., 0], void)
    return images, masks, tf_dtypes.cast(valid, "uint8")


def data_generator(
    pairs, image_size, batch, classes, epoch=None, augmented=False, cache=True, seed=0
):
    """Build the tf.data pipeline: decode, resize, cache, shuffle, batch, prefetch.
    For training, `epoch` is the epoch's number (or a variable holding it)."""
    image_paths, mask_paths = (list(paths) for paths in zip(*pairs))
    dataset = tf_data.Dataset.from_tensor_slices((image_paths, mask_paths))
    n, load = len(pairs), lambda i, m: load_data(i, m, image_size, classes)
    if cache:  # every pair decoded once, and all kept in memory as one batch
        dataset = dataset.map(load, tf_data.AUTOTUNE).batch(n).cache()
    else:  # only the file names are kept; each epoch decodes the pairs anew
        dataset = dataset.batch(n)

    length = n if epoch is None else n // batch * batch  # training: whole batches

    def in_order(images, masks):  # every pair in turn; training's order is random
        order = tf_range(n)
        if epoch is not None:  # stateless: drawn from the seed and the epoch alone
            order = tf_random.experimental.stateless_shuffle(order, [seed, epoch])
        order = tf_data.Dataset.from_tensor_slices(order[:length])
        return order.map(lambda k: (images[k], masks[k]))  # no copy of the rest

    counted = tf_data.experimental.assert_cardinality(length)  # Keras reads the count
    dataset = dataset.flat_map(in_order).apply(counted)
    if not cache:
        dataset = dataset.map(load, tf_data.AUTOTUNE)
    if augmented:  # a seed per pair and epoch, so parallel workers stay repeatable
        flip = classes.flip
        dataset = dataset.enumerate().map(
            lambda i, pair: augment(*pair, image_size, flip, [seed, epoch * n + i]),
            tf_data.AUTOTUNE,
        )
    # Batches stay uint8, a quarter of float32's bytes; Keras casts them itself.
    dataset = dataset.batch(batch, drop_remainder=epoch is not None)
    dataset = dataset.map(lambda i, m: ignore_void(i, m, classes.void))
    return dataset.prefetch(tf_data.AUTOTUNE)


if RUN and args.train:
    size, batch = args.image_size, args.batch_size
    epoch = tf_Variable(0, dtype="int64")  # the epoch being trained: Keras sets it
    train_dataset = data_generator(
        train_pairs, size, batch, classes, epoch, args.augment, args.cache, args.seed
    )
    val_dataset = data_generator(val_pairs, size, batch, classes, cache=args.cache)
    val_dataset = devices.pad_batches(val_dataset, args.distribute, classes.void)
    print("Train Dataset:", train_dataset)

"""
## Building the DeepLabV3+ model

The model holds its ImageNet ResNet50's preprocessing (RGB to BGR, minus the mean
pixel), so it takes raw 0..255 pixels. The backbone's `conv4_block6_2_relu`, at 1/16,
feeds the encoder; `conv2_block3_2_relu`, at 1/4, the decoder. The backbone is cut
inside stage four, not dilated: that gives the 1/16 (the paper dilates stage five).

*Dilated Spatial Pyramid Pooling* (the paper's Atrous Spatial Pyramid Pooling, ASPP)
holds the dilated convolutions. It sees the encoder features five ways: pooled over the
whole map, through a 1x1 convolution and through three 3x3 ones dilated by 6, 12 and 18,
so small parts (a glove) and large (a coat) get fitting context; a 1x1 block fuses the
five. On `--quick`'s 7x7 map all outer taps of rates 12 and 18 land in the padding, so
`convolution_block` clamps rates to the map's size: same function, much faster on a CPU.
"""


def convolution_block(
    block_input, num_filters=256, kernel_size=3, dilation_rate=1, use_bias=False
):
    """Convolution (dilated if asked), batch normalisation, ReLU."""
    rate = [min(dilation_rate, size) for size in block_input.shape[1:3]]
    x = layers.Conv2D(
        num_filters,
        kernel_size=kernel_size,
        dilation_rate=rate,
        padding="same",
        use_bias=use_bias,
        kernel_initializer=keras.initializers.HeNormal(),
    )(block_input)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def DilatedSpatialPyramidPooling(dspp_input):
    """Pool the features globally and at dilation rates 1, 6, 12 and 18; fuse."""
    dims = dspp_input.shape[-3:-1]  # the map's height and width
    x = layers.AveragePooling2D(pool_size=dims)(dspp_input)
    x = convolution_block(x, kernel_size=1, use_bias=True)
    # Upsampling runs in float32: XLA rejects the 16-bit gradient of TensorFlow's
    # bilinear resize, so mixed precision could not train on a GPU otherwise.
    upsample = layers.UpSampling2D(dims, interpolation="bilinear", dtype="float32")
    branches = [upsample(x), convolution_block(dspp_input, kernel_size=1)]
    for rate in (6, 12, 18):  # 3x3 taps spread ever wider
        branches.append(convolution_block(dspp_input, dilation_rate=rate))
    x = layers.Concatenate(axis=-1)(branches)
    return convolution_block(x, kernel_size=1)


"""
The decoder upsamples the encoder output 4x and concatenates the low-level features,
projected from 64 to 48 channels (the paper's choice, lest they outweigh the encoder's
256). Two 3x3 blocks refine the mix; a 1x1 convolution turns each pixel's 256 features
into a score (logit) per class. As in the paper and DeepLab's code, the classifier runs
at 1/4 resolution, before the upsampling (keras-io's example upsamples the 256 channels
first). Bilinear upsampling averages neighbours with weights summing to 1, and a 1x1
convolution an affine map of each pixel alone, so the two commute: the same function,
without a 512x512x256 tensor.

From scratch (`--weights none`, as in `--quick`), BatchNorm's moving averages lag the
weights at Keras's momentum of 0.99, and validation, which uses them, sees a loss in the
hundreds; 0.9 keeps up. With few images, or on a CPU, `--freeze-backbone` trains only
the encoder and decoder: the ImageNet features stay as they are, BatchNorm statistics
included, and no step computes the backbone's weight gradients.
"""


def DeeplabV3Plus(image_size, num_classes, backbone_weights=None, freeze=False):
    """Build DeepLabV3+ on a ResNet50 backbone; it returns logits at input size."""
    model_input = keras.Input(shape=(image_size, image_size, 3))
    # RGB to BGR, minus the mean pixel: as layers, exports keep the mean inside.
    bgr = ops.flip(model_input, axis=-1)
    preprocessed = layers.Rescaling(1.0, IMAGENET_MEAN_BGR, dtype="float32")(bgr)
    resnet50 = keras.applications.ResNet50(
        weights=backbone_weights, include_top=False, input_tensor=preprocessed
    )
    resnet50.trainable = not freeze  # frozen BatchNorm layers also stop updating
    x = resnet50.get_layer("conv4_block6_2_relu").output
    x = DilatedSpatialPyramidPooling(x)
    input_a = layers.UpSampling2D(4, interpolation="bilinear", dtype="float32")(x)
    input_b = resnet50.get_layer("conv2_block3_2_relu").output
    input_b = convolution_block(input_b, num_filters=48, kernel_size=1)
    x = layers.Concatenate(axis=-1)([input_a, input_b])
    x = convolution_block(convolution_block(x))
    # Logits stay float32 under mixed precision, so the loss is computed in float32.
    classify = layers.Conv2D(num_classes, 1, padding="same", dtype="float32")
    upsample = layers.UpSampling2D(4, interpolation="bilinear", dtype="float32")
    return keras.Model(inputs=model_input, outputs=upsample(classify(x)))


if RUN and args.train:
    with devices.distribution_scope(args.distribute, args.batch_size):
        backbone = files.backbone_weights(args.weights)  # ImageNet, or None
        model = DeeplabV3Plus(size, classes.num_classes, backbone, args.freeze_backbone)
        if not (args.resume and runs.completed_epochs(args.output_dir)):  # a backup's
            files.load_weights(model, args.weights)  # --weights FILE: a saved model
    for layer in model.layers:  # from scratch, see above
        if args.weights == "none" and isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    model.summary()

"""
## Training

The loss, `SparseCategoricalCrossentropy(from_logits=True)`, compares each pixel's
logits with its integer label; `ignore_class` leaves void pixels out. Pixel accuracy
alone flatters: predicting only background already scores high. *Mean IoU* averages over
the classes the intersection over union of predicted and true regions, so Sunglasses
counts as much as Background. Both come from a confusion matrix of exact counts.

Rare classes are rare in the loss too: the model gains little by learning Sunglasses.
`--class-weights` (on in `--quick`) scales each pixel's loss by 1 / √(its class's share
of the training pixels), normalised to average 1 per pixel; the scores stay unweighted.
`--loss` offers other answers to imbalance: `focal` scales each pixel's cross-entropy by
(1 - p)², p its true class's probability, so pixels already right fade; `dice` is 1
minus the mean over the classes present of the soft Dice overlap 2|A∩B| / (|A| + |B|),
so every class counts alike whatever its size; `crossentropy+dice` adds the two.

With `--precision mixed_bfloat16` (the default on recent GPUs; Colab's T4 gets
`mixed_float16`) layers compute in 16 bits and keep float32 weights. Keras
callbacks back the run up every epoch (for `--resume`) and keep the best model.
"""


def make_optimizer(learning_rate, schedule, total_steps):
    """Adam at a constant rate, DeepLab's poly decay, or warm-up then cosine decay."""
    if schedule == "poly":
        learning_rate = keras.optimizers.schedules.PolynomialDecay(
            learning_rate, decay_steps=total_steps, end_learning_rate=0.0, power=0.9
        )
    if schedule == "cosine":
        warmup = total_steps // 10
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0, total_steps - warmup, warmup_target=learning_rate, warmup_steps=warmup
        )
    return keras.optimizers.Adam(learning_rate=learning_rate)


def make_loss(kind="crossentropy", class_weights=None, void=255):
    """keras-io's cross-entropy, else --loss's choice, class-weighted if asked."""
    if kind == "crossentropy" and class_weights is None:
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=void, reduction="mean_with_sample_weight"
        )
    return metrics.SegmentationLoss(kind, class_weights, void)  # void left out too


def compile_model(model, optimizer, num_classes, loss=None, steps=1):
    """Attach the loss (cross-entropy unless given), Adam, accuracy and mean IoU."""
    loss = loss or make_loss()
    scores = [metrics.PixelAccuracy(num_classes), metrics.MeanIoU(num_classes)]
    model.compile(
        optimizer=optimizer,
        loss=loss,
        weighted_metrics=scores,  # "weighted": they see each pixel's weight, void 0
        steps_per_execution=steps,  # steps per call: a fast GPU never waits
    )
    # Adam's variables, made now, exist before the first step, so Keras traces the
    # training step once, not a second time to create them.
    model.optimizer.build(model.trainable_variables)


if RUN and args.train:
    plain = data_generator(train_pairs, size, batch, classes, cache=False)  # as is
    weights = metrics.class_weights(plain, classes) if args.class_weights else None
    total_steps = args.epochs * (len(train_pairs) // args.batch_size)
    with devices.distribution_scope(args.distribute, args.batch_size):
        optimizer = make_optimizer(args.learning_rate, args.lr_schedule, total_steps)
        loss = make_loss(args.loss, weights, classes.void)
        compile_model(
            model, optimizer, classes.num_classes, loss, args.steps_per_execution
        )
    run = runs.open_run(args, data.root)  # take --output-dir for this run
    set_epoch = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, _: epoch.assign(e)
    )
    model.fit(
        train_dataset,
        validation_data=val_dataset,
        epochs=args.epochs,
        initial_epoch=run.initial_epoch,  # after the last backed-up epoch on --resume
        callbacks=[set_epoch, *run.callbacks(classes)],  # backups, best model
        shuffle=False,  # the tf.data pipeline shuffles already
        verbose=run.verbose,  # a progress bar in a terminal, else a line per epoch
    )
    run.plot_history()

"""
## Inference using Colormap Overlay

A pixel's class is its largest logit. We paint each class in its `human_colormap.mat`
colour (times 255, for full strength), blend that over the photo and name the colours
shown in a key below. *Flip test-time augmentation* (`--tta flip`) also predicts the
mirrored image, swaps its left and right classes back, and averages the logits.
"""


def predict_logits(model, images, flip_classes=None):
    """Logits for a batch of images, averaged with their mirror's if flip_classes."""
    logits = np.asarray(model.predict_on_batch(images))
    if flip_classes is not None:  # the mirror's left arm is the image's right arm
        mirrored = np.asarray(model.predict_on_batch(images[:, :, ::-1]))
        logits = (logits + mirrored[:, :, ::-1][..., flip_classes]) / 2
    return logits


def infer(model, image_tensor, flip_classes=None):
    """Predict the class id of every pixel of one image."""
    logits = predict_logits(model, np.expand_dims(image_tensor, axis=0), flip_classes)
    return np.argmax(logits[0], axis=-1)


def decode_segmentation_masks(mask, colormap):
    """Paint each class id with its colour: (H, W) ids to (H, W, 3) uint8."""
    return np.asarray(colormap, dtype=np.uint8)[mask]


def class_mask(predicted, ids):
    """255 where a pixel's class is one of ids, 0 elsewhere: (H, W) uint8."""
    return np.isin(predicted, ids).astype("uint8") * 255


def get_overlay(image, colored_mask):
    """Blend the colour mask over the image: 35% image, 65% mask."""
    image = np.asarray(image, dtype=np.uint8)
    return cv2.addWeighted(image, 0.35, colored_mask, 0.65, 0)


def first_four(pairs, image_size, classes):
    """The first four images and masks at the training size."""
    batch = data_generator(pairs[:4], image_size, 4, classes, cache=False)
    images, masks, _ = (np.asarray(part) for part in next(iter(batch)))
    return images, masks


def plot_predictions(images, masks, classes, model, title):
    """Show image | overlay | prediction | ground truth, and which colour is which."""
    names = ["image", "overlay", "prediction", "ground truth"]
    colormap, shown = classes.palette(), []  # a colour for every id, void's included
    figure, axes = plt.subplots(len(images), 4, figsize=(12, 3 * len(images)))
    for row, image, mask in zip(np.atleast_2d(axes), images.astype("uint8"), masks):
        predicted = infer(model, image)
        predicted[mask[..., 0] == classes.void] = classes.void  # unscored, as truth
        colored = decode_segmentation_masks(predicted, colormap)
        truth = decode_segmentation_masks(mask[..., 0], colormap)
        panels = [image, get_overlay(image, colored), colored, truth]
        for ax, panel, name in zip(row, panels, names):
            ax.imshow(panel)
            ax.set_title(name)
            ax.axis("off")
        shown += [predicted, mask[..., 0]]
    figure.suptitle(title)
    metrics.add_class_key(figure, np.unique(shown), classes)  # under the images
    return figure


"""
### Inference on Train Images

The model has seen these images, so they show how well it fits its training data.
"""

if RUN and args.train:
    images, masks = first_four(train_pairs, args.image_size, classes)
    figure = plot_predictions(images, masks, classes, model, "Train images")
    run.save_figure(figure, "predictions_train.png")

"""
### Inference on Validation Images

These it has never seen: how well they look is how well the model generalises.
"""

if RUN and args.train:
    images, masks = first_four(val_pairs, args.image_size, classes)
    figure = plot_predictions(images, masks, classes, model, "Validation images")
    run.save_figure(figure, "predictions_val.png")

"""
## Evaluating at full resolution

Validation during training scores images squeezed to the training size; papers, and this
evaluation, score each at its own size: the logits are resized back bilinearly (smooth
scores, not hard ids) before the argmax, into one confusion matrix for the whole set.

Papers also test several scales: `--tta-scales 0.75,1,1.25` predicts at those multiples
of the input size (rounded to 16), mirrored too with `--tta flip`, and sums the resized
logits before the argmax. No weight depends on the input size (the pooling branch
averages any map), so `at_scales` rebuilds the model per size with the same weights.
"""


def at_scales(model, scales="1"):
    """The model at each --tta-scales multiple of its input size, same weights."""
    models = []
    for size in cli.tta_sizes(scales, model.input_shape[1]):  # multiples of 16
        copy = model
        if size != model.input_shape[1]:  # the same layers at another size
            copy = DeeplabV3Plus(size, model.output_shape[-1])
            copy.set_weights(model.get_weights())
        models.append(copy)
    return models


def logits_at_sizes(models, image, flip_classes=None, keep_aspect=False):
    """Each model's logits for an RGB image resized to the model's input size; with
    keep_aspect, fitted and padded, and the logits of the padding cropped off."""
    logits = []
    for model in models:
        size = model.input_shape[1]
        fitted = tf_image.resize(image, fitted_shape(image, size, keep_aspect))
        height, width = fitted.shape[:2]  # size x size unless keep_aspect
        batch = np.asarray(pad_square(fitted, size))[None]  # black, as fit() pads
        logits.append(predict_logits(model, batch, flip_classes)[0, :height, :width])
    return logits


def predict_full_resolution(
    models, image, flip_classes=None, to_target=None, keep_aspect=False
):
    """The class ids of an RGB image at its own size, from every model's logits
    (the ids of a --class-map's target classes with its matrix `to_target`)."""
    logits = logits_at_sizes(models, image, flip_classes, keep_aspect)
    return metrics.upsample_argmax(logits, image.shape[:2], to_target)


def evaluate(models, pairs, classes, flip_classes=None, to_target=None):
    """Score the model(s) on (image, mask) pairs at each image's original size;
    return the scores, the confusion matrix and each image's scores."""
    n = classes.num_classes
    matrix = np.zeros((n, n), dtype=np.int64)
    per_image = metrics.PerImage(classes)  # its scores; the pictures of the worst
    bar = progress_bar(len(pairs), "image")  # Keras's, as during training
    for image_path, mask_path in pairs:
        image = files.read_photo(image_path)  # RGB, upright as the camera meant it
        predicted = predict_full_resolution(
            models, image, flip_classes, to_target, classes.keep_aspect
        )
        truth = files.read_mask(mask_path, image.shape[:2], classes)
        counts = metrics.confusion_matrix(truth, predicted, n, classes.void)
        matrix += counts
        per_image.add(image_path, counts, image, predicted, truth)
        bar.add(1)
    scores = metrics.segmentation_metrics(matrix, classes.names)
    scores["per_image"] = per_image.scores
    scores["classes"] = classes.as_dict()  # names, colours and void of the ids
    flip = flip_classes is not None
    scores["tta"] = dict(flip=flip, input_sizes=[m.input_shape[1] for m in models])
    return scores, matrix, per_image


if RUN and args.train:  # the model as model.keras holds it, float32: as --evaluate
    keras.config.set_dtype_policy("float32")  # scores it, so at_scales' copies too
    models = at_scales(runs.as_saved(model), args.tta_scales)
    flip_classes = classes.flip if args.flip else None
    scores, matrix, per_image = evaluate(models, val_pairs, classes, flip_classes)
    pairs = [len(train_pairs), len(val_pairs)]
    run.report(model, val_dataset, scores, matrix, per_image, data, pairs)

"""
## Using a trained model

A saved `model.keras` is a plain Keras model that carries its class table.
`--predict photo.jpg folder/` writes each photo's colour mask, overlay and class
ids at its own size, and a 0/255 mask of the classes `--mask-classes` names;
`--evaluate model.keras` scores a model as above; `--export onnx` (or `litert`)
writes it for use without Keras; `python demo.py` serves it in a web page. With
`--class-map FILE`, all of them speak a label set of yours: a target class's
probability is the sum of its source classes', no retraining needed.

Parsed frame by frame, a video *flickers*: pixels on part boundaries change class
between frames though nothing moved. `--predict clip.mp4` prints their share, and
`--temporal-smoothing A` lowers it: each pixel's class probabilities become a running
average, `A * before + (1 - A) * now`, so a class must last a few frames to win.
"""


def predict_video(
    models, frames, smoothing=0.0, flip_classes=None, to_target=None, keep_aspect=False
):
    """(frame, class ids) for each frame; with smoothing, the ids of the running
    average of the frames' softmax probabilities."""
    average = None
    for frame in frames:
        logits = logits_at_sizes(models, frame, flip_classes, keep_aspect)
        if smoothing:  # average the probabilities, then back to logits (their log)
            now = [softmax(x, axis=-1) for x in logits]
            average = average or now  # the first frame starts the average
            average = [
                smoothing * a + (1 - smoothing) * p for a, p in zip(average, now)
            ]
            logits = [np.log(a + 1e-30) for a in average]
        yield frame, metrics.upsample_argmax(logits, frame.shape[:2], to_target)


if RUN and not args.train:  # --predict, --evaluate and --export use a saved model
    flag = "--evaluate" if args.evaluate else "--model"
    model, classes = cli.load_model(args.evaluate or args.model, flag)
    models = at_scales(model, args.tta_scales)  # --export refuses other scales
    flip_classes = classes.flip if args.flip else None  # the model's own classes
    class_map = read_class_map(args.class_map, classes)  # no --class-map: the same
    to_target, target = class_map.matrix, class_map.target  # None, classes
    keep_aspect = classes.keep_aspect  # as the model was trained: fitted or squashed

if RUN and args.predict:
    groups = cli.mask_groups(args.mask_classes, target)  # name -> the class ids
    kinds = cli.prediction_kinds(groups, args.cutout)  # the files of each photo
    inputs = cli.claim_predictions(args.predict, args.output_dir, kinds)
    for photo, output in cli.read_photos(inputs, "RGBA"):  # alpha: for --cutout
        image = photo[..., :3]  # the model sees RGB
        predicted = predict_full_resolution(
            models, image, flip_classes, to_target, keep_aspect
        )
        colored = decode_segmentation_masks(predicted, target.palette())
        pictures = dict(mask=colored, overlay=get_overlay(image, colored))
        for name, ids in groups.items():
            pictures[f"class-{name}"] = mask = class_mask(predicted, ids)
            if args.cutout:  # the photo, transparent outside the mask and where it was
                alpha = np.minimum(photo[..., 3], mask)
                pictures[f"cutout-{name}"] = np.dstack([image, alpha])
        cli.save_prediction(output, pictures, predicted, target)
    smoothing, colors = args.temporal_smoothing, target.palette()
    for frames, add_frame in video.read_clips(inputs, target):
        for frame, predicted in predict_video(
            models, frames, smoothing, flip_classes, to_target, keep_aspect
        ):
            colored = decode_segmentation_masks(predicted, colors)
            add_frame(get_overlay(frame, colored), predicted)  # to the clip's outputs

if RUN and args.evaluate:  # into the output folder that cli.start claimed
    data = datasets.get_dataset(args, make_toy_people.ensure)
    pairs = datasets.validation_pairs(data, args, classes)  # in the target classes
    scores, matrix, per_image = evaluate(models, pairs, target, flip_classes, to_target)
    cli.print_scores(scores, matrix, per_image, args.output_dir)

if RUN and args.export:
    export.export_model(
        model, args.export, args.output_dir, target, flip_classes, to_target
    )
