"""Data sets: their layouts on disk and their class tables.

A class table says what a model's outputs mean: the name and colour of each class
id, the void id that no loss or score counts, and which classes trade places when
an image is mirrored. It comes from the data set (CIHP's `human_colormap.mat`,
Pascal VOC's built-in table, or a `labelmap.txt`) and is saved inside every
`model.keras` the tutorial writes, so a model copied anywhere knows its classes.

`--data-dir` may hold any of these layouts (or hold one up to two folders down):

- CIHP: `Training/Images/*.jpg`, `Training/Category_ids/*.png`, the same under
  `Validation/`, and `human_colormap.mat`.
- Pascal VOC: `JPEGImages/*.jpg`, `SegmentationClass/*.png` and
  `ImageSets/Segmentation/train.txt` (and `val.txt`), as in `VOCdevkit/VOC2012/`.
  With a `labelmap.txt` beside them (an annotation tool's "Segmentation mask"
  export, such as CVAT's), the classes are the labelmap's; else VOC's 21.
- A folder of your own: `images/` and `masks/`, paired by file stem, optionally
  `val/images/` and `val/masks/`, and a `labelmap.txt`.

A `labelmap.txt` has one `name:r,g,b::` line per class, in id order; a line named
`void` gives the colour of void pixels in colour masks instead of a class.
"""

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import filelock
import numpy as np
from scipy.io import loadmat

from deeplab_support import UserError, files, progress_bar

VOID = 255  # the void label of VOC and most segmentation tools: never scored
VOID_COLOR = (224, 224, 192)  # VOC's colour for it, in colour masks and figures
TOY_DATA_DIR = files.PROJECT_DIR / "data" / "toy_people"  # made on first use
CLASSES_ENTRY = "deeplabv3_plus_classes.json"  # the class table inside a .keras
CIHP_NAMES = tuple(
    "Background Hat Hair Glove Sunglasses Upper-clothes Dress Coat Socks Pants "
    "Torso-skin Scarf Skirt Face Left-arm Right-arm Left-leg Right-leg Left-shoe "
    "Right-shoe".split()
)
CIHP_COLORS = (  # the colours of CIHP's human_colormap.mat, times 255
    (0, 0, 0),
    (128, 0, 0),
    (255, 0, 0),
    (0, 85, 0),
    (170, 0, 51),
    (255, 85, 0),
    (0, 0, 85),
    (0, 119, 221),
    (85, 85, 0),
    (0, 85, 85),
    (85, 51, 0),
    (52, 86, 128),
    (0, 128, 0),
    (0, 0, 255),
    (51, 170, 221),
    (0, 255, 255),
    (85, 255, 170),
    (170, 255, 85),
    (255, 255, 0),
    (255, 170, 0),
)
VOC_NAMES = tuple(
    "background aeroplane bicycle bird boat bottle bus car cat chair cow diningtable "
    "dog horse motorbike person pottedplant sheep sofa train tvmonitor".split()
)


def voc_color(index):
    """The colour of one id in VOC's palette: its bits spread over R, G and B."""
    rgb = [0, 0, 0]
    for bit in range(8):
        for channel in range(3):
            rgb[channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return tuple(rgb)


def words(name):
    """The lower-case words of a class name: `Left-arm`, `left_arm`, `LeftArm`."""
    return tuple(
        w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)
    )


def mirror_classes(names):
    """The class each class becomes in a mirror image: left and right swap."""
    ids = {words(name): i for i, name in enumerate(names)}
    flip = list(range(len(names)))
    for i, name in enumerate(names):
        for side, other in (("left", "right"), ("right", "left")):
            mirrored = tuple(other if w == side else w for w in words(name))
            if side in words(name) and mirrored in ids:
                flip[i] = ids[mirrored]
    return flip


@dataclass(frozen=True)
class ClassTable:
    """The names and colours of a data set's classes, and its void label."""

    names: tuple
    colors: tuple  # one (r, g, b) per class, 0..255
    void: int = VOID
    void_color: tuple = VOID_COLOR
    flip: list = field(init=False, compare=False)  # id -> id in a mirror image

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(self.names))
        colors = tuple(tuple(int(v) for v in color) for color in self.colors)
        object.__setattr__(self, "colors", colors)
        object.__setattr__(self, "void_color", tuple(int(v) for v in self.void_color))
        object.__setattr__(self, "flip", mirror_classes(self.names))

    @property
    def num_classes(self):
        return len(self.names)

    def palette(self):
        """A (256, 3) uint8 colour for every id: classes, void, else black."""
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[: self.num_classes] = self.colors
        palette[self.void] = self.void_color
        return palette

    def to_json(self):
        fields = ("names", "colors", "void", "void_color")
        return json.dumps({name: getattr(self, name) for name in fields})

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(data["names"], data["colors"], data["void"], data["void_color"])


CIHP = ClassTable(CIHP_NAMES, CIHP_COLORS)
VOC = ClassTable(VOC_NAMES, [voc_color(i) for i in range(len(VOC_NAMES))])


@dataclass
class DataSet:
    """A data set on disk: its (image, mask) pairs and its class table."""

    layout: str  # "CIHP", "Pascal VOC", ...
    root: Path
    train: list  # (image, mask) paths, in the data set's order
    val: list  # its own validation pairs; empty if it has none
    classes: ClassTable


def with_void(classes, void):
    """The same table with another void id, which must not be a class id."""
    if not (isinstance(void, int) and classes.num_classes <= void <= 255):
        raise UserError(
            f"--ignore-index {void} is not free: it must lie in "
            f"{classes.num_classes}..255, above the {classes.num_classes} class ids"
        )
    return ClassTable(classes.names, classes.colors, void, classes.void_color)


def find(data_dir, void=VOID):
    """Recognise the layout in data_dir (or up to two levels down) and read it."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(
            f"data folder {data_dir} does not exist; pass --data-dir pointing to "
            "your data set, add --download to fetch CIHP, or omit --data-dir to "
            "use the synthetic data set"
        )
    # The official archives nest their root one or two folders down.
    below = (sorted(data_dir.glob(pattern)) for pattern in ("*", "*/*"))
    for folder in chain([data_dir], chain.from_iterable(below)):
        for matches, read in LAYOUTS:
            if matches(folder):
                dataset = read(folder)
                dataset.classes = with_void(dataset.classes, void)
                return dataset
    raise UserError(
        f"{data_dir} holds no data set that this script knows (looked two levels "
        "down): CIHP needs Training/Images and Training/Category_ids; Pascal VOC "
        "or an annotation-tool export needs JPEGImages, SegmentationClass and "
        "ImageSets/Segmentation/*.txt; a folder of your own needs images/, "
        "masks/ and labelmap.txt. See 'Train on your own data' in the README"
    )


def pair_by_stem(image_dir, mask_dir):
    """Pair each image with the mask of the same stem; refuse unpaired images."""
    images = files.list_images(image_dir)
    masks = {p.stem: p for p in files.list_images(mask_dir, (".png",))}
    unpaired = [p.stem for p in images if p.stem not in masks]
    if unpaired:
        raise UserError(
            f"{len(unpaired)} of {len(images)} images in {image_dir} have no mask in "
            f"{mask_dir} (first: {', '.join(unpaired[:5])}); add the masks as "
            "<stem>.png or remove those images"
        )
    return [(p, masks[p.stem]) for p in images]


def is_cihp(root):
    return (root / "Training" / "Images").is_dir()


def read_cihp(root):
    """CIHP: Training/ and Validation/ folders and human_colormap.mat."""
    train = pair_by_stem(
        root / "Training" / "Images", root / "Training" / "Category_ids"
    )
    if not train:
        raise UserError(
            f"{root / 'Training' / 'Images'} holds no .jpg or .png images; check "
            "--data-dir"
        )
    val_images = root / "Validation" / "Images"
    val_masks = root / "Validation" / "Category_ids"
    val = pair_by_stem(val_images, val_masks) if val_images.is_dir() else []
    classes = ClassTable(CIHP_NAMES, cihp_colors(root / "human_colormap.mat"))
    return DataSet("CIHP layout", root, train, val, classes)


def cihp_colors(path):
    """Read CIHP's class colours from human_colormap.mat (built in if absent)."""
    if not os.path.lexists(path):
        return CIHP_COLORS
    problem = files.not_a_file(path)
    if problem:
        raise UserError(
            f"{path} cannot be read ({problem}); replace it with CIHP's colormap or "
            "delete it to use the built-in CIHP colours"
        )
    try:
        colormap = np.asarray(loadmat(path)["colormap"], dtype=np.float64)
    except Exception as error:  # scipy raises many kinds for a broken .mat
        raise UserError(
            f"cannot read a colormap from {path} ({error}); delete the file to use "
            "the built-in CIHP colours"
        ) from None
    if colormap.shape != (20, 3) or not ((colormap >= 0) & (colormap <= 1)).all():
        raise UserError(
            f"{path} holds a colormap of shape {colormap.shape}; expected (20, 3) "
            "values in [0, 1]. Delete it to use the built-in one"
        )
    # Scale by 255, not 100 as the original tutorial did: full-strength colours.
    return np.round(colormap * 255).astype(np.uint8)


def is_voc(root):
    return (root / "SegmentationClass").is_dir() and (
        root / "ImageSets" / "Segmentation"
    ).is_dir()


def read_voc(root):
    """Pascal VOC, or an annotation tool's export in its layout with a labelmap."""
    lists = root / "ImageSets" / "Segmentation"
    train_lists = [lists / "train.txt"] if (lists / "train.txt").is_file() else []
    train_lists = train_lists or sorted(set(lists.glob("*.txt")) - {lists / "val.txt"})
    train = [pair for path in train_lists for pair in voc_pairs(root, path)]
    val = voc_pairs(root, lists / "val.txt") if (lists / "val.txt").is_file() else []
    if not train and not val:
        raise UserError(
            f"{lists} lists no images (no train.txt, or it is empty); list one "
            "image name per line"
        )
    labelmap = root / "labelmap.txt"
    if labelmap.exists():
        return DataSet(
            "Pascal VOC layout with labelmap.txt",
            root,
            train,
            val,
            read_labelmap(labelmap),
        )
    return DataSet("Pascal VOC layout", root, train, val, VOC)


def voc_pairs(root, list_file):
    """The (image, mask) paths of the names in one ImageSets list file."""
    pairs = []
    for number, line in enumerate(read_text(list_file).splitlines(), 1):
        words = line.split()
        if not words:
            continue
        name = words[0]
        candidates = [root / "JPEGImages" / (name + e) for e in files.IMAGE_EXTENSIONS]
        image = next((p for p in candidates if p.exists()), candidates[0])
        mask = root / "SegmentationClass" / f"{name}.png"
        missing = [str(p) for p in (image, mask) if files.not_a_file(p)]
        if missing:
            raise UserError(
                f"{list_file} line {number} names {name!r}, but {missing[0]} is "
                "missing or not a file; add it or remove the line"
            )
        pairs.append((image, mask))
    return pairs


def is_folder(root):
    return (root / "images").is_dir() and (root / "masks").is_dir()


def read_folder(root):
    """A folder of your own: images/ and masks/ (and val/), with labelmap.txt."""
    labelmap = root / "labelmap.txt"
    if not labelmap.exists():
        raise UserError(
            f"{root} has images/ and masks/ but no labelmap.txt; write one "
            "'name:r,g,b::' line per class, in id order (see the README)"
        )
    train = pair_by_stem(root / "images", root / "masks")
    val_dir = root / "val"
    val = (
        pair_by_stem(val_dir / "images", val_dir / "masks") if val_dir.is_dir() else []
    )
    return DataSet(
        "images/ and masks/ layout", root, train, val, read_labelmap(labelmap)
    )


LAYOUTS = [(is_cihp, read_cihp), (is_voc, read_voc), (is_folder, read_folder)]


def read_text(path):
    """A small text file's contents, or one error line saying why not."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path} ({error}); fix or replace it") from None


def read_labelmap(path):
    """Read a labelmap.txt: one `name:r,g,b:parts:actions` line per class."""
    names, colors, void_color = [], [], VOID_COLOR
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.strip().split(":")
        rgb = fields[1] if len(fields) > 1 else ""
        match = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", rgb)
        color = tuple(int(v) for v in match.groups()) if match else ()
        if not fields[0].strip() or not color or max(color) > 255:
            raise UserError(
                f"{path} line {number} is {line.strip()!r}; expected 'name:r,g,b::' "
                "with a name and three numbers 0..255"
            )
        if fields[0].strip().lower() == "void":
            void_color = color
        elif fields[0].strip() in names or color in colors:
            raise UserError(
                f"{path} line {number} repeats the name or colour of an earlier "
                "class; give each class its own name and colour"
            )
        else:
            names.append(fields[0].strip())
            colors.append(color)
    if not 2 <= len(names) <= 255:
        raise UserError(
            f"{path} defines {len(names)} classes; a segmentation model needs 2 to "
            "255 (one of them the background)"
        )
    return ClassTable(names, colors, VOID, void_color)


def save_classes(path, classes):
    """Add the class table to a saved .keras file (a zip that Keras loads as is)."""
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(CLASSES_ENTRY, classes.to_json())


def model_classes(path, num_outputs):
    """The class table saved in a .keras file; CIHP's for older 20-class models."""
    try:
        with zipfile.ZipFile(path) as archive:
            return ClassTable.from_json(archive.read(CLASSES_ENTRY))
    except KeyError:  # saved before models carried their classes
        if num_outputs == CIHP.num_classes:
            return CIHP
    except (OSError, ValueError, TypeError, zipfile.BadZipFile):
        pass
    raise UserError(
        f"model {path} carries no readable class table for its {num_outputs} "
        "outputs; use a model.keras written by this script's training"
    )


def onnx_metadata(classes):
    """The class table as ONNX metadata: key -> string."""
    return {
        "class_names": json.dumps(list(classes.names)),
        "class_colors": json.dumps([list(c) for c in classes.colors]),
        "void_label": str(classes.void),
    }


def ids_png(ids, classes):
    """A palette PNG of class ids: viewers show the colours, NumPy gets the ids."""
    from PIL import Image

    image = Image.fromarray(np.asarray(ids, dtype=np.uint8))
    image.putpalette(classes.palette().ravel().tolist())
    return image


def get_dataset(args):
    """The data set to use: --data-dir, else CIHP in data/, else the synthetic set."""
    if args.download:
        files.download_cihp(Path(args.data_dir or files.DATA_DIR))
    quick = args.quick and not args.download  # --quick trains on synthetic data
    if args.data_dir is None and (quick or not files.DATA_DIR.exists()):
        from data import make_toy_people  # it imports this module's CIHP table

        print(
            f"No CIHP data in {files.DATA_DIR}: using the synthetic toy-people set "
            f"in {TOY_DATA_DIR} (add --download to fetch CIHP, about 2.7 GB)."
        )
        wanted = max(250, args.num_train_images + args.num_val_images)
        bar = progress_bar(wanted + 50, "image")  # and 50 validation images
        lock = filelock.FileLock(files.user_cache_dir("locks") / "toy_people.lock")
        try:
            with lock:  # two first runs at once: one writes, the other waits
                root = make_toy_people.ensure(
                    TOY_DATA_DIR, num_images=wanted, progress=lambda: bar.add(1)
                )
        except FileExistsError as error:  # a folder of the user's by that name
            raise UserError(f"{error}; move it away to use the synthetic set") from None
        return find(root, args.ignore_index)
    return find(args.data_dir or files.DATA_DIR, args.ignore_index)


def split(dataset, args):
    """The training and validation pairs, as --val-split and the counts say."""
    num_train, num_val = args.num_train_images, args.num_val_images
    official = args.val_split == "official"
    wanted = num_train + (0 if official else num_val)
    if len(dataset.train) < wanted:
        raise UserError(
            f"the data set in {dataset.root} has "
            f"{len(dataset.train)} training images but {wanted} were asked for "
            f"({num_train} training{'' if official else f' + {num_val} validation'}); "
            "lower --num-train-images or --num-val-images"
        )
    train = dataset.train[:num_train]
    if not official:
        return train, dataset.train[num_train:wanted]
    if not dataset.val:
        raise UserError(
            f"--val-split official needs the data set's own validation images "
            f"(CIHP's Validation/, VOC's val.txt, or val/ in a folder of yours), and "
            f"{dataset.root} has none; use --val-split train-tail"
        )
    return train, dataset.val[:num_val]


def get_pairs(dataset, args):
    """Say what was found; return the checked training and validation pairs."""
    train, val = split(dataset, args)
    classes = dataset.classes
    print(
        f"{dataset.layout} in {dataset.root}: {len(train)} training and "
        f"{len(val)} validation images, {classes.num_classes} classes, void label "
        f"{classes.void}."
    )
    return files.check_pairs(train, classes), files.check_pairs(val, classes)


def validation_pairs(dataset, args, classes):
    """The checked validation pairs alone, for --evaluate of a model of classes."""
    if dataset.classes.names != classes.names:
        theirs, ours = classes, dataset.classes
        raise UserError(
            f"the model predicts {theirs.num_classes} classes ({theirs.names[1]}, "
            f"...) but the data set in {dataset.root} has {ours.num_classes} "
            f"({ours.names[1]}, ...); evaluate it on the data set it was trained "
            "for (--data-dir)"
        )
    return files.check_pairs(split(dataset, args)[1], dataset.classes)
