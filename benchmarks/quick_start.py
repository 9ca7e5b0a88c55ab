"""Time `python deeplabv3_plus.py --quick` and report what it reaches, per seed.

    python benchmarks/quick_start.py                      # seed 42, synthetic CIHP
    python benchmarks/quick_start.py --seeds 1 2 3 42
    python benchmarks/quick_start.py --layout voc         # the synthetic VOC folder
    python benchmarks/quick_start.py --loss crossentropy dice --seeds 1 2 3 42
    python benchmarks/quick_start.py --aspect 2 --keep-aspect   # tall people
    python benchmarks/quick_start.py --class-weights      # any other flag: the run's

Each run is the command a newcomer types, in a fresh process, into a private
temporary folder. `--layout voc` (or `cvat`, `folder`) first writes the same
synthetic people in that layout, as many images as the quick preset takes from
CIHP's, and passes it as --data-dir; `--aspect 2` draws every image twice as tall
as wide. `--loss` runs every seed with each loss. The
table gives the wall time from the command to its last line, the time until the
first epoch's line (imports, data, model, tracing and the first epoch), the median
time of the later epochs, and the validation mean IoU at the training size and at
full resolution.
"""

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def parse_args(argv=None):
    """Read the benchmark's flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="(42)")
    parser.add_argument(
        "--layout",
        choices=["cihp", "voc", "cvat", "folder"],
        default="cihp",
        help="the synthetic set's layout (cihp: the tutorial's own fallback)",
    )
    parser.add_argument("--loss", nargs="+", default=[], help="one row per loss")
    parser.add_argument("--aspect", type=aspect, help="every image's height / width")
    args, flags = parser.parse_known_args(argv)
    args.flags = flags  # the rest go to deeplabv3_plus.py
    return args


def aspect(text):
    """--aspect: a height / width that the data generator draws, 0.1 to 10."""
    value = float(text)
    if not 0.1 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must lie in 0.1..10, got {text}")
    return value


def cpu_name():
    """The processor's model name, as lscpu shows it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synthetic_set(layout, folder, aspect=None):
    """Write the quick preset's synthetic people in this layout; its folder."""
    from data import make_toy_people

    root = Path(folder) / layout
    # More than the quick preset takes: 192 training and 16 validation images.
    make_toy_people.generate(root, num_images=250, layout=layout, aspect=aspect)
    return root


def run_quick(seed, output_dir, data_dir=None, flags=(), loss=None):
    """Run the quick start once; return its timings and scores."""
    command = [sys.executable, str(REPO / "deeplabv3_plus.py"), "--quick", *flags]
    command += ["--loss", loss] if loss else []
    command += ["--seed", str(seed), "--output-dir", str(output_dir)]
    command += ["--data-dir", str(data_dir)] if data_dir else []
    start, epochs, said = time.perf_counter(), [], ""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout:  # Keras's line at each epoch's end: "48/48 - 19s"
            if re.match(r"\d+/\d+ - ", line):
                epochs.append(time.perf_counter() - start)
            said = line.strip() if line.startswith("error: ") else said
    if process.returncode:  # the run's own error line says what to change
        print(said or f"error: the quick run with seed {seed} failed", file=sys.stderr)
        raise SystemExit(2)
    wall = time.perf_counter() - start
    later = [b - a for a, b in zip(epochs, epochs[1:])] or [0.0]
    metrics = json.loads((Path(output_dir) / "metrics.json").read_text())
    return {
        **({"loss": loss} if loss else {}),
        "seed": seed,
        "wall_s": round(wall, 1),
        "first_epoch_line_s": round(epochs[0], 1),
        "steady_epoch_s": round(statistics.median(later), 1),
        "val_mean_iou": round(metrics["val_mean_iou"], 3),
        "full_resolution_mean_iou": round(metrics["full_resolution_mean_iou"], 3),
    }


def main(args):
    """Run every seed; print one JSON line each, then a Markdown table."""
    with tempfile.TemporaryDirectory(prefix="deeplabv3_plus-quick-") as folder:
        data_dir = None  # the tutorial's own synthetic CIHP
        if args.layout != "cihp" or args.aspect is not None:
            data_dir = synthetic_set(args.layout, folder, args.aspect)
        rows = []
        for loss in args.loss or [None]:
            for seed in args.seeds:
                output_dir = Path(folder) / f"{loss}-seed-{seed}"
                rows.append(run_quick(seed, output_dir, data_dir, args.flags, loss))
                print(json.dumps(rows[-1]), flush=True)
    flags = "".join(f" {flag}" for flag in args.flags)
    kind = f"{args.layout} set"
    kind += f" of aspect {args.aspect:g}" if args.aspect is not None else ""
    print(f"\n`--quick{flags}` on the synthetic {kind}, {cpu_name()}:\n")
    print(
        "| loss " * bool(args.loss) + "| seed | wall (s) | first epoch line (s) "
        "| later epochs (s each) | val mean IoU | full-resolution mean IoU |"
    )
    print("| --- " * len(rows[0]) + "|")
    for row in rows:
        print("| " + " | ".join(str(value) for value in row.values()) + " |")


if __name__ == "__main__":
    main(parse_args())
