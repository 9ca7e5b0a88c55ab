"""Test-time augmentation: mean IoU and time per image, with and without it.

Scores one trained model on the validation images at their original resolution,
as `--evaluate` does, four ways: no TTA, `--tta flip`, `--tta-scales` and both,
and prints a JSON line per way, then a Markdown table. The other flags are the
tutorial's (which data set, how many images, which split).

    python benchmarks/tta.py --evaluate outputs/model.keras --num-val-images 50
    python benchmarks/tta.py --evaluate outputs/model.keras --tta-scales 0.75,1,1.5
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import deeplabv3_plus as tutorial  # noqa: E402
from deeplab_support import cli, datasets  # noqa: E402

DEFAULT_SCALES = "0.75,1,1.25"


def main(argv=None):
    """Evaluate the --evaluate model four ways; print the scores and times."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--tta-scales" not in argv:
        argv += ["--tta-scales", DEFAULT_SCALES]
    args = cli.parse_args(tutorial.DEFAULTS, argv)
    cli.check_args(args)
    model, classes = cli.load_model(args.evaluate, "--evaluate")
    data = datasets.get_dataset(args, tutorial.make_toy_people.ensure)
    pairs = datasets.validation_pairs(data, args, classes)
    size = model.input_shape[1]
    rows = []
    for scales in ["1", args.tta_scales]:
        models = tutorial.at_scales(model, scales)
        for flip in [None, classes.flip]:
            tutorial.evaluate(models, pairs[:1], classes, flip)  # traced, warmed up
            start = time.perf_counter()
            scores, *_ = tutorial.evaluate(models, pairs, classes, flip)
            seconds = time.perf_counter() - start
            row = dict(
                scales=scales, flip=bool(flip), mean_iou=round(scores["mean_iou"], 3)
            )
            row["ms_per_image"] = round(seconds * 1000 / len(pairs))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{len(pairs)} validation images, model input {size} px:\n")
    print("| scales | flip | mean IoU | ms per image |\n| --- | --- | --- | --- |")
    for row in rows:
        flip = "yes" if row["flip"] else "no"
        print(
            f"| {row['scales']} | {flip} | {row['mean_iou']} | {row['ms_per_image']} |"
        )


if __name__ == "__main__":
    main()
