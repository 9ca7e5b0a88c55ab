"""Data sets on disk: their layouts, their (image, mask) pairs and their classes.

`--data-dir` may hold, itself or up to two folders down: CIHP (`Training/` and
`Validation/`, each with `Images/` and `Category_ids/`, and `human_colormap.mat`);
Pascal VOC (`JPEGImages/`, `SegmentationClass/`, `ImageSets/Segmentation/*.txt`)
with VOC's 21 classes, or those of a `labelmap.txt` beside them (an annotation
tool's "Segmentation mask" export, such as CVAT's); or a folder of your own
(`images/` and `masks/` paired by file stem, optionally `val/images/` and
`val/masks/`, and a `labelmap.txt`). A labelmap has one `name:r,g,b::` line per
class, in id order; a line named `void` gives the colour of void pixels instead.
"""

import os
import re
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

import filelock
import keras
import numpy as np
from scipy.io import loadmat

from deeplab_support import UserError, files, progress_bar, runs
from deeplab_support.classes import CIHP_COLORS, CIHP_NAMES, VOC, VOID, VOID_COLOR
from deeplab_support.classes import ClassTable, read_class_map, with_void

TOY_DATA_DIR = files.PROJECT_DIR / "data" / "toy_people"  # made on first use
DATA_DIR = files.PROJECT_DIR / "data" / "instance-level_human_parsing"  # --download
CIHP_URL = (  # the tutorial's Google Drive copy of CIHP, about 2.7 GB zipped
    "https://drive.usercontent.google.com/download"
    "?id=1B9A9UCJYMwTL4oBEo4RZfbMZMaZhKJaz&export=download&confirm=t"
)
CIHP_ZIP = "instance-level-human-parsing.zip"  # kept beside the data folder
# A labelmap line: `name:r,g,b`, then the parts and actions that we ignore.
LABELMAP_LINE = re.compile(r"([^:]*):\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(:.*)?")


@dataclass
class DataSet:
    """A data set on disk: its (image, mask) pairs and its class table."""

    layout: str  # "CIHP", "Pascal VOC", ...
    root: Path
    train: list  # (image, mask) paths, in the data set's order
    val: list  # its own validation pairs; empty if it has none
    classes: ClassTable


def find(data_dir, void=VOID):
    """Recognise the layout in data_dir (or up to two levels down) and read it."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        problem = "is not a folder" if data_dir.exists() else "does not exist"
        raise UserError(
            f"data folder {data_dir} {problem}; pass --data-dir pointing to "
            "your data set, add --download to fetch CIHP, or omit --data-dir to "
            "use the synthetic data set"
        )
    for folder in candidates(data_dir):
        for read in (read_cihp, read_voc, read_folder):
            dataset = read(folder)  # None where folder holds another layout
            if dataset:
                dataset.classes = with_void(dataset.classes, void)
                return dataset
    raise UserError(
        f"{data_dir} holds no data set that this script knows (looked two levels "
        "down): CIHP needs Training/Images and Training/Category_ids; Pascal VOC "
        "or an annotation-tool export needs JPEGImages, SegmentationClass and "
        "ImageSets/Segmentation/*.txt; a folder of your own needs images/, "
        "masks/ and labelmap.txt. See 'Train on your own data' in the README"
    )


def candidates(data_dir):
    """data_dir and the folders up to two levels below it, where archives nest."""
    below = (sorted(data_dir.glob(pattern)) for pattern in ("*", "*/*"))
    return chain([data_dir], chain.from_iterable(below))


def download_cihp(data_dir):
    """Download CIHP's zip beside data_dir and extract it into data_dir, once."""
    if any((f / "Training" / "Images").is_dir() for f in candidates(data_dir)):
        return  # an earlier --download extracted it
    parent = data_dir.absolute().parent
    extracted = parent / f"{Path(CIHP_ZIP).stem}_extracted"  # where Keras extracts
    fetched = [] if os.path.lexists(parent / CIHP_ZIP) else [CIHP_ZIP]  # else read
    names = [data_dir.name, extracted.name, *fetched]
    fix = "pass the folder that holds CIHP as --data-dir without --download"
    halfway = extracted.name  # an extraction that stopped: deleted first
    runs.claim(parent, names, "--download", drop=lambda n: n == halfway, fix=fix)
    if data_dir.is_dir() and any(data_dir.iterdir()):  # ours, but emptied of CIHP
        raise UserError(f"{data_dir} holds no CIHP; {fix}, or move it away")
    try:
        with warnings.catch_warnings(action="ignore"):  # a zip Keras can't open: below
            keras.utils.get_file(
                CIHP_ZIP, CIHP_URL, cache_subdir=str(parent), extract=True
            )
        if not extracted.is_dir():
            raise zipfile.BadZipFile("no zip directory at its end")
    except Exception as error:  # get_file wraps every network failure this way
        runs.remove(extracted)  # claimed, and half-written
        if isinstance(error, (zipfile.BadZipFile, zlib.error, EOFError)):
            raise UserError(
                f"{parent / CIHP_ZIP} is not a complete zip archive ({error}); "
                "delete it so that --download fetches it again"
            ) from None
        raise UserError(
            f"could not download CIHP into {data_dir} ({error}); check the network, "
            "or download the zip by hand (see README) and pass --data-dir"
        ) from None
    os.replace(extracted, data_dir)  # so only a whole extraction is ever found
    runs.release(parent)  # done: the training that follows may take hours


def pair_by_stem(image_dir, mask_dir):
    """Pair each image with the mask of the same stem; refuse unpaired images."""
    images = files.list_images(image_dir)
    by_stem(images)
    masks = by_stem(files.list_images(mask_dir, (".png",)))
    unpaired = [p for p in images if p.stem not in masks]
    if unpaired:
        first = unpaired[0]
        found = f", which holds {min(masks.values()).name} and more" if masks else ""
        raise UserError(
            f"{len(unpaired)} of {len(images)} images in {image_dir} have no mask of "
            f"the same name in {mask_dir}{found} (first: "
            f"{', '.join(p.name for p in unpaired[:5])}); name each mask as its image "
            f"with .png ({first.stem}.png for {first.name}), or remove those images"
        )
    return [(p, masks[p.stem]) for p in images]


def by_stem(paths):
    """Files by stem; two of one stem (x.jpg, x.png) would share a mask: an error."""
    found = {}
    for path in paths:
        if found.setdefault(path.stem, path) != path:
            raise UserError(
                f"{found[path.stem]} and {path.name} have the same name but for the "
                "extension, and images pair with masks by name; rename or remove one"
            )
    return found


def read_cihp(root):
    """CIHP: Training/ and Validation/ folders and human_colormap.mat."""
    images = root / "Training" / "Images"
    if not images.is_dir():
        return None
    train, val = [
        pair_by_stem(root / part / "Images", root / part / "Category_ids")
        for part in ("Training", "Validation")
    ]
    if not train:
        raise UserError(f"{images} holds no .jpg or .png images; check --data-dir")
    classes = ClassTable(CIHP_NAMES, cihp_colors(root / "human_colormap.mat"))
    return DataSet("CIHP layout", root, train, val, classes)


def cihp_colors(path):
    """Read CIHP's class colours from human_colormap.mat (built in if absent)."""
    if not os.path.lexists(path):
        return CIHP_COLORS
    files.require_file(path, "CIHP colormap")  # a FIFO would hang loadmat
    try:
        colormap = np.asarray(loadmat(path)["colormap"], dtype=np.float64)
        if colormap.shape != (20, 3) or not ((colormap >= 0) & (colormap <= 1)).all():
            raise ValueError(f"shape {colormap.shape}, not (20, 3) values in [0, 1]")
    except Exception as error:  # scipy raises many kinds for a broken .mat
        raise UserError(
            f"cannot read a colormap from {path} ({error}); delete the file to use "
            "the built-in CIHP colours"
        ) from None
    # Scale by 255, not 100 as the original tutorial did: full-strength colours.
    return np.round(colormap * 255).astype(np.uint8)


def read_voc(root):
    """Pascal VOC, or an annotation tool's export in its layout with a labelmap."""
    lists = root / "ImageSets" / "Segmentation"
    if not ((root / "SegmentationClass").is_dir() and lists.is_dir()):
        return None
    train_lists = [lists / "train.txt"] if (lists / "train.txt").is_file() else []
    train_lists = train_lists or sorted(set(lists.glob("*.txt")) - {lists / "val.txt"})
    train = [pair for path in train_lists for pair in voc_pairs(root, path)]
    val = voc_pairs(root, lists / "val.txt") if (lists / "val.txt").is_file() else []
    if not train and not val:
        raise UserError(
            f"{lists} lists no images (no train.txt, or it is empty); list one "
            "image name per line"
        )
    if not (root / "labelmap.txt").exists():
        return DataSet("Pascal VOC layout", root, train, val, VOC)
    classes = read_labelmap(root / "labelmap.txt")
    return DataSet("Pascal VOC layout with labelmap.txt", root, train, val, classes)


def voc_pairs(root, list_file):
    """The (image, mask) paths of the names in one ImageSets list file."""
    pairs, endings = [], [e for x in files.IMAGE_EXTENSIONS for e in (x, x.upper())]
    for number, line in enumerate(files.read_text(list_file, "list").splitlines(), 1):
        name = line.strip()  # CVAT's names may hold spaces
        if not name:
            continue
        candidates = [root / "JPEGImages" / (name + e) for e in endings]
        image = next((p for p in candidates if p.exists()), candidates[0])
        mask = root / "SegmentationClass" / f"{name}.png"
        missing = [p for p in (image, mask) if not files.is_regular_file(p, quiet=True)]
        if missing:
            raise UserError(
                f"{list_file} line {number} names {name!r}, but {missing[0]} is "
                "missing or not a file; add it or remove the line"
            )
        pairs.append((image, mask))
    return pairs


def read_folder(root):
    """A folder of your own: images/ and masks/ (and val/), with labelmap.txt."""
    if not ((root / "images").is_dir() and (root / "masks").is_dir()):
        return None
    if not (root / "labelmap.txt").exists():
        raise UserError(
            f"{root} has images/ and masks/ but no labelmap.txt; write one "
            "'name:r,g,b::' line per class, in id order (see the README)"
        )
    train = pair_by_stem(root / "images", root / "masks")
    if not train:
        raise UserError(
            f"{root / 'images'} holds no .jpg or .png images (its subfolders are not "
            "read); put the images in it directly"
        )
    val = pair_by_stem(root / "val" / "images", root / "val" / "masks")  # [] if none
    classes = read_labelmap(root / "labelmap.txt")
    return DataSet("images/ and masks/ layout", root, train, val, classes)


def read_labelmap(path):
    """Read a labelmap.txt: one `name:r,g,b:parts:actions` line per class."""
    names, colors, void_color, given_void = [], [], VOID_COLOR, False
    for number, line in enumerate(files.read_text(path, "labelmap").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LABELMAP_LINE.fullmatch(line.strip())
        name = match[1].strip() if match else ""
        color = tuple(int(v) for v in match.groups()[1:4]) if match else ()
        if not name or "," in name or max(color) > 255:  # --mask-classes splits at ,
            raise UserError(
                f"{path} line {number} is {line.strip()!r}; expected 'name:r,g,b::' "
                "with a name (no comma in it) and three numbers 0..255"
            )
        void = name.lower() == "void"
        taken = colors + ([void_color] if given_void and not void else [])
        if name in names or color in taken:
            raise UserError(
                f"{path} line {number} repeats the name or colour of an earlier "
                "class (or void); give each class its own name and colour"
            )
        if void:
            void_color, given_void = color, True
        else:
            names.append(name)
            colors.append(color)
    if not 2 <= len(names) <= 255:
        raise UserError(
            f"{path} defines {len(names)} classes; a segmentation model needs 2 to "
            "255 (one of them the background)"
        )
    return ClassTable(names, colors, VOID, void_color)


def get_dataset(args, make_synthetic):
    """The data set to use: --data-dir, else CIHP in data/, else the synthetic set
    in the folder that `make_synthetic(folder, num_images, progress)` returns."""
    root = Path(args.data_dir or DATA_DIR)
    if args.download:
        download_cihp(root)
    quick = args.quick and not args.download  # --quick trains on synthetic data
    if args.data_dir is None and (quick or not DATA_DIR.exists()):
        print(
            f"--quick trains on the synthetic toy-people set in {TOY_DATA_DIR}, not "
            f"on CIHP in {DATA_DIR} (drop --quick to use CIHP)."
            if DATA_DIR.exists()
            else f"No CIHP data in {DATA_DIR}: using the synthetic toy-people set "
            f"in {TOY_DATA_DIR} (add --download to fetch CIHP, about 2.7 GB)."
        )
        wanted = max(250, args.num_train_images + args.num_val_images)
        bar = progress_bar(wanted + 50, "image")  # and 50 validation images
        lock = filelock.FileLock(files.user_cache_dir("locks") / "toy_people.lock")
        with lock:  # two first runs at once: one writes, the other waits
            root = make_synthetic(TOY_DATA_DIR, wanted, progress=lambda: bar.add(1))
    return find(root, args.ignore_index)


def split(dataset, args, training=True):
    """The training and validation pairs, as --val-split and the counts say (no
    training pairs where they are not `training`'s and validation's are its own)."""
    official, num_val = args.val_split == "official", args.num_val_images
    num_train = args.num_train_images if training or not official else 0
    wanted = num_train + (0 if official else num_val)
    if len(dataset.train) < wanted:
        raise UserError(
            f"the data set in {dataset.root} has "
            f"{len(dataset.train)} training images but {wanted} were asked for "
            f"({num_train} training{'' if official else f' + {num_val} validation'}); "
            "lower --num-train-images or --num-val-images"
        )
    if official and len(dataset.val) < num_val:  # none, or too few
        have = len(dataset.val)
        fix = f"lower it to at most {have}, or " if have else ""
        raise UserError(
            f"--val-split official takes the data set's own validation images (CIHP's "
            f"Validation/, VOC's val.txt, or val/ in a folder of yours), and "
            f"{dataset.root} has {have} validation images but --num-val-images asks "
            f"for {num_val}; {fix}use --val-split train-tail"
        )
    train = dataset.train[:num_train]
    val = dataset.val[:num_val] if official else dataset.train[num_train:wanted]
    # An image listed twice could be scored by validation after training on it.
    resolved = (Path(p).resolve() for p, _ in train + val)  # a linked val/ too
    twice = [p for p, n in Counter(resolved).items() if n > 1]
    if twice:
        raise UserError(
            f"image {twice[0]} is listed twice for this run (in training, or in "
            "training and validation), so validation could score images the "
            "model trained on; list each image once (for VOC: in one of "
            "train.txt and val.txt)"
        )
    return train, val


def get_pairs(dataset, args):
    """Say what was found; return the checked training and validation pairs."""
    train, val = split(dataset, args)
    classes = dataset.classes
    class_map = read_class_map(args.class_map, classes)  # masks and classes follow it
    dataset.classes = replace(class_map.target, keep_aspect=args.keep_aspect)
    mapped = f", mapped to {class_map.target.num_classes}" if args.class_map else ""
    print(
        f"{dataset.layout} in {dataset.root}: {len(train)} training and "
        f"{len(val)} validation images, {classes.num_classes} classes{mapped}, void "
        f"label {classes.void}."
    )
    train = files.check_pairs(train, classes, class_map, training=True)
    return train, files.check_pairs(val, classes, class_map)


def validation_pairs(dataset, args, classes):
    """The checked validation pairs alone, for --evaluate of a model of classes, their
    masks in the classes that it predicts: with a --class-map, mapped alike where
    they hold the model's classes or trained it through the map (its sources)."""
    same = dataset.classes.names == classes.names
    source = classes if same else dataset.classes  # the model's void, where it can
    predicted = read_class_map(args.class_map, classes).target  # what it outputs
    through = source.names != predicted.names and (same or classes.mapped)
    class_map = read_class_map(args.class_map if through else None, source)
    if class_map.target.names != predicted.names:
        pairs = zip([*predicted.names, None], [*class_map.target.names, None])
        index, pair = next((i, p) for i, p in enumerate(pairs) if p[0] != p[1])
        theirs, ours = (repr(name) if name else "none" for name in pair)
        raise UserError(
            f"the model predicts {predicted.num_classes} classes, the data set in "
            f"{dataset.root} has {source.num_classes}, and class {index} is "
            f"{theirs} in the model but {ours} in the data; evaluate it on the data "
            "set it was trained for (--data-dir), with the --class-map it was "
            "trained with, or with one that maps its classes to the data's"
        )
    return files.check_pairs(split(dataset, args, False)[1], source, class_map)
