"""Segmentation metrics, the pictures that show them, and the losses of --loss.

All scores come from one confusion matrix over the whole data set, as benchmarks
report them: per-batch means would weigh a batch of small images like large ones.
"""

from pathlib import Path

import cv2
import keras
import numpy as np
from keras import ops
from matplotlib.patches import Patch

from deeplab_support import files

CHUNK = 1 << 22  # pixels handled at once, so huge images need bounded memory


def class_weights(dataset, classes):
    """Each class's loss weight, 1 / sqrt(its pixel share), mean pixel weight 1."""
    counts = np.zeros(classes.num_classes)
    for _, masks, weights in dataset:  # void pixels have weight 0: not counted
        valid = np.ravel(weights) > 0
        counts += np.bincount(np.ravel(masks)[valid], minlength=len(counts))
    weights = np.where(counts > 0, 1 / np.sqrt(np.maximum(counts, 1)), 0.0)
    weights *= counts.sum() / np.sum(weights * counts)
    listed = ", ".join(f"{n} {w:.2f}" for n, w in zip(classes.names, weights))
    print(f"Class weights (0: not in the training masks): {listed}")
    return weights


LOSSES = ["crossentropy", "dice", "focal", "crossentropy+dice"]


@keras.saving.register_keras_serializable("deeplab_support")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy, focal (gamma 2), soft Dice, or cross-entropy plus Dice.

    Void pixels count in none. Class weights scale each pixel's cross-entropy or
    focal term (`fit(class_weight=...)` would weigh the scores too) and each class's
    Dice term. Dice, 1 - the mean Dice of the classes present, is one number per
    batch given to every pixel: Keras's weighted mean of the pixels' losses.
    """

    def __init__(self, kind="crossentropy", class_weights=None, void=255, **kwargs):
        super().__init__(**{"reduction": "mean_with_sample_weight", **kwargs})
        if class_weights is not None:  # plain floats, for the config's JSON
            class_weights = [float(weight) for weight in class_weights]
        self.kind, self.void, self.class_weights = kind, void, class_weights

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.squeeze(y_true, axis=-1), "int32")
        valid = ops.not_equal(labels, self.void)
        labels = ops.where(valid, labels, 0)
        n = y_pred.shape[-1]
        weights = ops.array(self.class_weights or [1.0] * n, "float32")
        log_p = ops.log_softmax(y_pred, axis=-1)
        log_true = ops.squeeze(ops.take_along_axis(log_p, labels[..., None], -1), -1)
        losses = -log_true * ops.take(weights, labels)  # cross-entropy
        if self.kind == "focal":  # confident pixels fade: (1 - p)**2 of cross-entropy
            losses = (1 - ops.exp(log_true)) ** 2 * losses
        if self.kind == "dice":
            losses = ops.zeros_like(losses)
        if "dice" in self.kind:
            keep = ops.cast(valid, "float32")[..., None]
            truth = ops.one_hot(labels, n) * keep
            guess = ops.exp(log_p) * keep  # the softmax, void pixels zeroed
            pixels = tuple(range(len(y_pred.shape) - 1))  # every axis but the classes
            overlap = ops.sum(truth * guess, pixels)
            sizes = ops.sum(truth, pixels) + ops.sum(guess, pixels)
            dice = 2 * overlap / ops.maximum(sizes, 1e-7)
            present = ops.cast(ops.sum(truth, pixels) > 0, "float32") * weights
            mean_dice = ops.divide_no_nan(ops.sum(dice * present), ops.sum(present))
            losses = losses + 1 - mean_dice
        return ops.where(valid, losses, 0.0)

    def get_config(self):
        config = {"kind": self.kind, "class_weights": self.class_weights}
        return {**super().get_config(), **config, "void": self.void}


class ConfusionMatrix(keras.metrics.Metric):
    """A score from the confusion matrix of every pixel seen, counted exactly.

    The running total is `high * 2**24 + low` in two int32 tables, exact up to 2**55
    pixels (JAX has no int64 by default; Keras's MeanIoU counts in floats, by a
    per-element loop on PyTorch). Pixels of weight 0 (void) count nowhere.
    """

    def __init__(self, num_classes, name=None, **kwargs):
        super().__init__(name=name or self.default_name, **kwargs)
        self.num_classes = num_classes
        cells = num_classes * num_classes
        self.low, self.high = (  # summed over devices when training is distributed
            self.add_variable((cells,), "zeros", "int32", "sum", name=part)
            for part in ["low", "high"]
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        n = self.num_classes
        pairs = ops.cast(ops.reshape(y_true, [-1]), "int32") * n
        pairs += ops.cast(ops.reshape(ops.argmax(y_pred, axis=-1), [-1]), "int32")
        if sample_weight is not None:  # void pixels go to an extra bin, dropped
            pairs = ops.where(ops.reshape(sample_weight, [-1]) > 0, pairs, n * n)
        counts = count_values(pairs, n * n + 1)[: n * n]
        low = self.low + counts  # below 2**24 + one step's pixels: no wrap
        carry = low // 2**24
        self.low.assign(low - carry * 2**24)
        self.high.assign(self.high + carry)

    def matrix(self):
        """The confusion matrix as floats: rows are true classes, columns guesses."""
        high, low = (ops.cast(part, "float32") for part in [self.high, self.low])
        return ops.reshape(high * 2.0**24 + low, (self.num_classes, self.num_classes))

    def get_config(self):
        return {"name": self.name, "num_classes": self.num_classes}


def count_values(values, length):
    """How often each of 0..length-1 occurs in int32 `values`, as exact int32."""
    if keras.backend.backend() == "torch":  # its segment_sum adds in float32
        return ops.cast(ops.bincount(values, minlength=length), "int32")
    # JAX cannot compile bincount (its length would depend on the data).
    return ops.segment_sum(ops.ones_like(values), values, num_segments=length)


class MeanIoU(ConfusionMatrix):
    """Mean over the classes seen of true positives / (truth + predicted - both)."""

    default_name = "mean_iou"

    def result(self):
        matrix = self.matrix()
        both = ops.diagonal(matrix)
        union = ops.sum(matrix, axis=0) + ops.sum(matrix, axis=1) - both
        seen = ops.cast(union > 0, "float32")  # classes never seen have no IoU
        iou = ops.divide_no_nan(both, union)
        return ops.divide_no_nan(ops.sum(iou * seen), ops.sum(seen))


class PixelAccuracy(ConfusionMatrix):
    """The share of (non-void) pixels whose predicted class is the true one."""

    default_name = "accuracy"

    def result(self):
        matrix = self.matrix()
        return ops.divide_no_nan(ops.trace(matrix), ops.sum(matrix))


def confusion_matrix(labels, predictions, num_classes, void=None):
    """The counts of (true, predicted) class pairs, void left out: rows are truth."""
    labels, predictions = np.ravel(labels), np.ravel(predictions)
    if void is not None:
        keep = labels != void
        labels, predictions = labels[keep], predictions[keep]
    counts = np.zeros(num_classes * num_classes, dtype=np.int64)
    for start in range(0, labels.size, CHUNK):
        pairs = labels[start : start + CHUNK].astype(np.int64) * num_classes
        pairs += predictions[start : start + CHUNK]
        counts += np.bincount(pairs, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def upsample_argmax(logits, shape, matrix=None, band=64):
    """The argmax of (h, w, classes) logits (of their sum, for a list: multi-scale
    TTA) resized bilinearly to shape as `cv2.resize`, a band of rows at a time: a
    10,000 x 10,000 image never holds its 8 GB of logits. With a --class-map
    `matrix`, of each target's probability, the sum of its sources' softmax."""
    maps = logits if isinstance(logits, list) else [logits]
    height, width = shape
    labels = np.empty((height, width), dtype=np.uint8)
    for start in range(0, height, band):
        rows = np.arange(start, min(start + band, height))
        total = sum(resize_rows(part, rows, height, width) for part in maps)
        if matrix is not None:  # the softmax less its division: no argmax changes
            total = np.exp(total - total.max(axis=-1, keepdims=True)) @ matrix
        labels[rows] = np.argmax(total, axis=-1)
    return labels


def resize_rows(logits, rows, height, width):
    """These output rows of `logits` bilinearly resized to (height, width)."""
    h = logits.shape[0]
    # Output row y samples source row (y + 0.5) * h / height - 0.5 (half-pixel
    # centres, as cv2.resize), clamped to the map.
    source = np.clip((rows + 0.5) * h / height - 0.5, 0, h - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, h - 1)
    first, last = low[0], high[-1]
    wide = cv2.resize(logits[first : last + 1], (width, last + 1 - first))
    wide = wide.reshape(last + 1 - first, width, -1)
    top, bottom = wide[low - first], wide[high - first]
    return top + (bottom - top) * (source - low)[:, None, None].astype(np.float32)


def segmentation_metrics(matrix, class_names):
    """Pixel accuracy, mean accuracy, mean IoU, frequency-weighted IoU, per-class IoU;
    a class in neither labels nor predictions has no IoU (None), in no mean."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positives = np.diag(matrix)
    label_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0: NaN, no score
        iou = true_positives / (label_counts + predicted_counts - true_positives)
        class_accuracy = true_positives / label_counts
    frequency = label_counts / max(matrix.sum(), 1)
    return {
        "pixel_accuracy": float(true_positives.sum() / max(matrix.sum(), 1)),
        "mean_accuracy": float(np.nanmean(class_accuracy)),
        "mean_iou": float(np.nanmean(iou)),
        "frequency_weighted_iou": float(np.nansum(frequency * iou)),
        "per_class_iou": {
            name: None if np.isnan(value) else float(value)
            for name, value in zip(class_names, iou)
        },
    }


class PerImage:
    """Each image's pixel accuracy and mean IoU (over the classes in its truth),
    and the pictures of the `keep` images of the lowest mean IoU."""

    def __init__(self, classes, keep=5):
        self.classes, self.keep, self.scores, self.worst = classes, keep, [], []

    def add(self, path, counts, image, predicted, truth):
        """Score one image from its confusion matrix; keep it if among the worst."""
        path = files.printable(files.original(path))  # the user's name, not a copy's
        both, truths = np.diag(counts), counts.sum(axis=1)
        union = truths + counts.sum(axis=0) - both
        seen = truths > 0  # an image of void alone has no score
        iou = float(np.mean(both[seen] / union[seen])) if seen.any() else None
        accuracy = float(both.sum() / truths.sum()) if seen.any() else None
        self.scores.append(dict(image=path, pixel_accuracy=accuracy, mean_iou=iou))
        if iou is not None:  # (score, order): never compares the pictures
            found = (iou, len(self.scores), Path(path).name, image, predicted, truth)
            self.worst = sorted(self.worst + [found])[: self.keep]

    def plot(self, figure, axes):
        """Draw image | prediction | truth for each of the worst images."""
        palette = self.classes.palette()
        for row, (iou, _, name, image, predicted, truth) in zip(axes, self.worst):
            panels = [image, palette[predicted], palette[truth]]
            titles = [f"{name}: mean IoU {iou:.2f}", "prediction", "truth"]
            for ax, panel, title in zip(row, panels, titles):
                ax.imshow(panel)
                ax.set_title(title, fontsize=9)
                ax.axis("off")
        figure.suptitle(f"The {len(self.worst)} worst validation images")
        shown = [ids.ravel() for worst in self.worst for ids in worst[4:]]
        add_class_key(figure, np.unique(np.concatenate(shown)), self.classes)


def plot_per_class_iou(per_class_iou, axes):
    """Draw a horizontal bar per class; classes with no pixels are marked n/a."""
    ious = list(per_class_iou.values())
    bars = axes.barh(list(per_class_iou), [iou or 0 for iou in ious], color="tab:blue")
    labels = ["n/a" if iou is None else f"{iou:.2f}" for iou in ious]
    axes.bar_label(bars, labels, padding=2, fontsize=8)
    axes.invert_yaxis()
    axes.set(xlim=(0, 1.1), xlabel="IoU", title="Per-class IoU (validation)")


def plot_confusion_matrix(matrix, class_names, figure, axes):
    """Draw the confusion matrix normalised by row: each true class sums to 1."""
    matrix = np.asarray(matrix, dtype=np.float64)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = axes.imshow(normalised, cmap="viridis", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, class_names, fontsize=7)
    axes.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix")
    figure.colorbar(image, ax=axes, fraction=0.046)


def add_class_key(figure, ids, classes):
    """Put a key under the figure: the colour and name of each class id shown."""
    colors, ids = classes.palette() / 255, [i for i in ids if i < classes.num_classes]
    handles = [Patch(color=colors[i], label=classes.names[i]) for i in ids]  # no void
    bottom = min(ax.get_position().y0 for ax in figure.axes)  # of the lowest row
    key = dict(loc="upper center", bbox_to_anchor=(0.5, bottom), frameon=False)
    figure.legend(handles=handles, ncol=min(len(handles), 6) or 1, **key)


def class_shares(label_map, class_names):
    """Return {class name: share of pixels} for the classes present, largest first."""
    counts = np.bincount(np.asarray(label_map).ravel(), minlength=len(class_names))
    shares = {class_names[i]: counts[i] / counts.sum() for i in np.flatnonzero(counts)}
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def percent(share):
    """A share as a percentage; a class on a sliver of pixels as <0.1%, not 0.0%."""
    return f"{share:.1%}" if share >= 0.0005 else "<0.1%"
