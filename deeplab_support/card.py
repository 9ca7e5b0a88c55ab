"""The model card: README.md beside model.keras, as Hugging Face and Kaggle read it.

A YAML header (library, task, tags, data set, scores; strings as JSON strings,
which YAML reads as they are), then what the model is, its data, scores and use.
"""

import html
import json

from deeplab_support import files

CARD = "README.md"
PADDED = """ It was trained on photos scaled to fit the
square with their aspect ratio kept and padded at the bottom and right with black
(0): give it photos that way and crop the logits back to the photo."""


def markdown(text):
    """Text shown as it is in Markdown: no HTML tag, no table cell break."""
    return html.escape(text).replace("|", "&#124;")


def model_card(args, data, num_pairs, summary, scores):
    """The text of README.md for a finished run."""
    size, (num_train, num_val), classes = args.image_size, num_pairs, data.classes
    aspect = ", photos fitted with their aspect ratio kept" * args.keep_aspect
    trained_on = f"{files.printable(data.root.name)} ({data.layout})"
    if (data.root / "toy_people.json").is_file():  # data/make_toy_people.py's marker
        trained_on = f"synthetic toy people ({data.layout})"
    kind = data.layout.removesuffix(" layout").lower().replace(" ", "-")
    ious = {k: f"{v:.3f}" for k, v in scores["per_class_iou"].items() if v is not None}
    class_rows = "\n".join(
        f"| {index} | {markdown(name)} | {tuple(color)} | {ious.get(name, 'n/a')} |"
        for index, (name, color) in enumerate(zip(classes.names, classes.colors))
    )
    return f"""---
library_name: keras
pipeline_tag: image-segmentation
tags: [keras, image-segmentation, semantic-segmentation, deeplabv3plus, resnet50]
metrics:
- mean_iou
- accuracy
model-index:
- name: {json.dumps(f"DeepLabV3+ ResNet50, {size} px")}
  results:
  - task:
      type: image-segmentation
      name: Semantic segmentation
    dataset:
      name: {json.dumps(trained_on)}
      type: {json.dumps(kind)}
      split: validation
    metrics:
    - type: mean_iou
      value: {summary['full_resolution_mean_iou']:.4f}
      name: Mean IoU at full resolution
    - type: accuracy
      value: {summary['val_accuracy']:.4f}
      name: Pixel accuracy at {size} px
---

# DeepLabV3+ (ResNet50) for {markdown(trained_on)}

A [DeepLabV3+](https://arxiv.org/abs/1802.02611) semantic-segmentation model
trained by `deeplabv3_plus.py`. It takes raw 0..255 RGB pixels at
{size} x {size} and returns one logit per class and pixel;
the class of a pixel is its largest logit.{PADDED * args.keep_aspect}

## Scores

On the {num_val} validation images: mean IoU
{summary['val_mean_iou']:.3f} at {size} px, and
{summary['full_resolution_mean_iou']:.3f} at each image's original resolution
(pixel accuracy there {scores['pixel_accuracy']:.3f}).

| id | class | colour (RGB) | IoU at full resolution |
| --- | --- | --- | --- |
{class_rows}

Void label: {classes.void} (counted in no loss and no score).

![Predictions on validation images](predictions_val.png)

## Training

| setting | value |
| --- | --- |
| training images | {num_train} |
| validation images | {num_val} ({args.val_split}) |
| input size | {size} x {size} px{aspect} |
| batch size | {args.batch_size} |
| epochs | {args.epochs} |
| learning rate | {args.learning_rate:g} ({args.lr_schedule}) |
| initial weights | {args.weights} |
| augmentation | {'on' if args.augment else 'off'} |
| loss | {args.loss} |
| class weights | {'on' if args.class_weights else 'off'} |
| backbone | {'frozen' if args.freeze_backbone else 'trained'} |
| precision | {summary['precision']} |
| seed | {args.seed} |

## Use

```python
import keras

model = keras.saving.load_model("model.keras")
logits = model.predict(images)  # (batch, {size}, {size}, 3) RGB
classes = logits.argmax(-1)  # (batch, {size}, {size}) class ids
```

Or, beside `deeplabv3_plus.py`, at each photo's own resolution:

```shell
python deeplabv3_plus.py --predict photo.jpg --model model.keras
```
"""
