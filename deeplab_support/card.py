"""The model card: README.md beside model.keras, as Hugging Face and Kaggle read it.

A YAML header (library, task, tags, data set, scores) and a page that says what
the model is, what it was trained on, how well it scores and how to use it.
Strings in the header are written as JSON strings, which YAML reads as they are.
"""

import json

import keras

from deeplab_support import datasets

CARD = "README.md"


def quoted(text):
    """A YAML string that holds any text: JSON's double-quoted form."""
    return json.dumps(str(text))


def data_name(data):
    """What the model was trained on, in a few words."""
    if data.root.resolve() == datasets.TOY_DATA_DIR.resolve():
        return "synthetic toy people (CIHP layout)"
    return f"{data.root.name} ({data.layout})"


def header(args, data, summary):
    """The YAML front matter that model hubs index."""
    score, accuracy = summary["full_resolution_mean_iou"], summary["val_accuracy"]
    return f"""---
library_name: keras
pipeline_tag: image-segmentation
tags:
- keras
- image-segmentation
- semantic-segmentation
- deeplabv3plus
- resnet50
metrics:
- mean_iou
- accuracy
model-index:
- name: {quoted(f"DeepLabV3+ ResNet50, {args.image_size} px")}
  results:
  - task:
      type: image-segmentation
      name: Semantic segmentation
    dataset:
      name: {quoted(data_name(data))}
      type: {quoted(data.layout.removesuffix(" layout").lower().replace(" ", "-"))}
      split: validation
    metrics:
    - type: mean_iou
      value: {score:.4f}
      name: Mean IoU at full resolution
    - type: accuracy
      value: {accuracy:.4f}
      name: Pixel accuracy at {args.image_size} px
---
"""


def settings(args, num_train, num_val):
    """The training settings, as table rows."""
    rows = {
        "training images": num_train,
        "validation images": f"{num_val} ({args.val_split})",
        "input size": f"{args.image_size} x {args.image_size} px",
        "batch size": args.batch_size,
        "epochs": args.epochs,
        "learning rate": f"{args.learning_rate:g} ({args.lr_schedule})",
        "initial weights": args.weights,
        "augmentation": "on" if args.augment else "off",
        "class weights": "on" if args.class_weights else "off",
        "precision": keras.config.dtype_policy().name,
        "seed": args.seed,
    }
    return "\n".join(f"| {name} | {value} |" for name, value in rows.items())


def class_rows(classes, per_class_iou):
    """One table row per class: id, name, colour, IoU at full resolution."""
    rows = []
    for index, (name, color) in enumerate(zip(classes.names, classes.colors)):
        iou = per_class_iou.get(name)
        score = "n/a" if iou is None else f"{iou:.3f}"
        rows.append(f"| {index} | {name} | {tuple(color)} | {score} |")
    return "\n".join(rows)


def model_card(args, data, num_pairs, summary, scores):
    """The text of README.md for a finished run."""
    classes, (num_train, num_val) = data.classes, num_pairs
    return f"""{header(args, data, summary)}
# DeepLabV3+ (ResNet50) for {data_name(data)}

A [DeepLabV3+](https://arxiv.org/abs/1802.02611) semantic-segmentation model
trained by `deeplabv3_plus.py`. It takes raw 0..255 RGB pixels at
{args.image_size} x {args.image_size} and returns one logit per class and pixel;
the class of a pixel is its largest logit.

## Scores

On the {num_val} validation images: mean IoU
{summary['val_mean_iou']:.3f} at {args.image_size} px, and
{summary['full_resolution_mean_iou']:.3f} at each image's original resolution
(pixel accuracy there {scores['pixel_accuracy']:.3f}).

| id | class | colour (RGB) | IoU at full resolution |
| --- | --- | --- | --- |
{class_rows(classes, scores['per_class_iou'])}

Void label: {classes.void} (counted in no loss and no score).

![Predictions on validation images](predictions_val.png)

## Training

| setting | value |
| --- | --- |
{settings(args, num_train, num_val)}

## Use

```python
import keras

model = keras.saving.load_model("model.keras")
logits = model.predict(images)  # (batch, {args.image_size}, {args.image_size}, 3) RGB
classes = logits.argmax(-1)  # (batch, {args.image_size}, {args.image_size}) class ids
```

Or, beside `deeplabv3_plus.py`, at each photo's own resolution:

```shell
python deeplabv3_plus.py --predict photo.jpg --model model.keras
```
"""
