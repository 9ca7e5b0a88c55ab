"""Class tables: what a model's outputs mean.

A class table gives each class id's name and colour, the void id that no loss or
score counts, and which classes trade places in a mirror image. It comes from the
data set (CIHP's `human_colormap.mat`, VOC's built-in table, or a `labelmap.txt`)
and is saved inside every `model.keras`, so a model copied anywhere knows them.
"""

import json
import re
import zipfile
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from deeplab_support import UserError, files

VOID = 255  # the void label of VOC and most segmentation tools: never scored
VOID_COLOR = (224, 224, 192)  # VOC's colour for it, in colour masks and figures
CLASSES_ENTRY = "deeplabv3_plus_classes.json"  # the class table inside a .keras
CIHP_NAMES = tuple(
    "Background Hat Hair Glove Sunglasses Upper-clothes Dress Coat Socks Pants "
    "Torso-skin Scarf Skirt Face Left-arm Right-arm Left-leg Right-leg Left-shoe "
    "Right-shoe".split()
)
CIHP_COLORS = np.array(  # the colours of CIHP's human_colormap.mat, times 255
    [0, 0, 0, 128, 0, 0, 255, 0, 0, 0, 85, 0, 170, 0, 51, 255, 85, 0, 0, 0, 85]
    + [0, 119, 221, 85, 85, 0, 0, 85, 85, 85, 51, 0, 52, 86, 128, 0, 128, 0]
    + [0, 0, 255, 51, 170, 221, 0, 255, 255, 85, 255, 170, 170, 255, 85, 255, 255, 0]
    + [255, 170, 0]
).reshape(20, 3)
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
    swap = {"left": "right", "right": "left"}
    ids = {words(name): i for i, name in enumerate(names)}
    flip = list(range(len(names)))
    for i, name in enumerate(names):
        mirrored = tuple(swap.get(w, w) for w in words(name))
        if mirrored != words(name):  # a sided class: its other side, if any
            flip[i] = ids.get(mirrored, i)
    return flip


@dataclass(frozen=True)
class ClassTable:
    """The names and colours of a data set's classes, its void label, whether its
    model reads photos scaled with their aspect ratio kept (--keep-aspect), and
    whether they are the targets of a --class-map."""

    names: tuple
    colors: tuple  # one (r, g, b) per class, 0..255
    void: int = VOID
    void_color: tuple = VOID_COLOR
    keep_aspect: bool = field(default=False, compare=False)
    mapped: bool = field(default=False, compare=False)
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

    def as_dict(self):
        """The table as plain lists and numbers, as JSON holds it."""
        fields = ("names", "colors", "void", "void_color", "keep_aspect", "mapped")
        return json.loads(json.dumps({name: getattr(self, name) for name in fields}))

    def to_json(self):
        return json.dumps(self.as_dict())

    @classmethod
    def from_json(cls, text):
        """The table that to_json wrote; a ValueError where it is damaged."""
        data = json.loads(text)
        table = data["names"], data["colors"], data["void"], data["void_color"]
        older = data.get("keep_aspect", False), data.get("mapped", False)
        table = cls(*table, *older)  # older models: squashed, not mapped
        n, rgb = table.num_classes, [*table.colors, table.void_color]
        if not (
            n == len(set(table.names)) == len(table.colors) >= 2
            and all(isinstance(name, str) and name for name in table.names)
            and all(
                len(color) == 3 and 0 <= min(color) <= max(color) < 256 for color in rgb
            )
            and type(table.void) is int
            and n <= table.void < 256
            and type(table.keep_aspect) is type(table.mapped) is bool
        ):
            raise ValueError("a damaged class table")
        return table


CIHP = ClassTable(CIHP_NAMES, CIHP_COLORS)
VOC = ClassTable(VOC_NAMES, [voc_color(i) for i in range(len(VOC_NAMES))])


def with_void(classes, void):
    """The same table with another void id, which must not be a class id."""
    if not (isinstance(void, int) and classes.num_classes <= void <= 255):
        raise UserError(
            f"--ignore-index {void} is not free: it must lie in "
            f"{classes.num_classes}..255, above the {classes.num_classes} class ids"
        )
    return replace(classes, void=void)


def save_classes(path, classes):
    """Add the class table to a saved .keras file (a zip that Keras loads as is)."""
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(CLASSES_ENTRY, classes.to_json())


def model_classes(path, num_outputs):
    """The class table saved in a .keras file; CIHP's for older 20-class models."""
    try:
        with zipfile.ZipFile(path) as archive:
            older = CLASSES_ENTRY not in archive.namelist()  # saved before tables
            if older and num_outputs == CIHP.num_classes:
                return CIHP
            return ClassTable.from_json(archive.read(CLASSES_ENTRY))
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile):
        pass
    raise UserError(
        f"model {path} carries no readable class table for its {num_outputs} "
        "outputs; use a model.keras written by this script's training"
    )


def ids_png(ids, classes):
    """A palette PNG of class ids: viewers show the colours, NumPy gets the ids."""
    image = Image.fromarray(np.asarray(ids, dtype=np.uint8))
    image.putpalette(classes.palette().ravel().tolist())
    return image


# A --class-map line: `target (r,g,b): source, source`, the colour optional.
MAP_LINE = re.compile(r"([^:(,]+?) *(?:\((\d+), *(\d+), *(\d+)\))? *:(.*)")


@dataclass(frozen=True)
class ClassMap:
    """--class-map: a model's (source) classes merged many-to-one into targets."""

    target: ClassTable
    lookup: np.ndarray  # (256,) uint8: source id -> target id; void stays void
    matrix: np.ndarray = None  # (sources, targets) 0/1: which sources sum to which


def read_class_map(path, source):
    """Read a --class-map file: `target (r,g,b): source, source` lines, in id order.

    The colour is optional (else the first source class's); a `void:` line names
    the classes to leave out, and every source class is mapped exactly once.
    Without a path, the identity: each class stays itself; so too for the map that
    trained a model (`source.mapped`), which speaks its targets already.
    """
    text = "" if path is None else files.read_text(path, "--class-map")
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    named = [m[1] for m in map(MAP_LINE.fullmatch, lines) if m and m[1] != "void"]
    if path is None or source.mapped and tuple(named) == source.names:  # trained it
        return ClassMap(source, np.arange(256, dtype=np.uint8))
    targets, seen, void_color = {}, set(), source.void_color  # name: (colour, ids)
    for number, line in enumerate(lines, 1):
        match = MAP_LINE.fullmatch(line)
        rgb = tuple(int(v) for v in match.groups()[1:4] if v) if match else ()
        if not line:
            continue
        if not match or max(rgb, default=0) > 255 or match[1] in targets:
            raise UserError(
                f"--class-map {path} line {number} is {line!r}; write one "
                "'target (r,g,b): source, source' line per target class (the colour "
                "is optional, each target named once)"
            )
        named = filter(None, map(str.strip, match[5].split(",")))
        ids = [source_id(name, source, seen, f"{path} line {number}") for name in named]
        if match[1].lower() == "void":
            void_color = rgb or void_color
            continue
        if not ids:
            raise UserError(
                f"--class-map {path} line {number} maps no class to {match[1]!r}; "
                "name its source classes after the colon"
            )
        targets[match[1]] = rgb or source.colors[ids[0]], ids
    missing = [name for name in source.names if name not in seen]
    problem = missing and f"maps no target to {', '.join(missing)}"
    if problem or len(targets) < 2:
        raise UserError(
            f"--class-map {path} {problem or 'has fewer than 2 target classes'}; give "
            "every class of the model one target (or put it on the 'void:' line to "
            "leave it out)"
        )
    names, colors = list(targets), [color for color, _ in targets.values()]
    if len({*colors, void_color}) <= len(colors):  # figures tell classes by colour
        raise UserError(
            f"--class-map {path} gives two targets, or a target and void, one "
            "colour; give each target a colour of its own, as '(r,g,b)' after its name"
        )
    target = ClassTable(
        names, colors, source.void, void_color, source.keep_aspect, mapped=True
    )
    lookup = np.full(256, source.void, dtype=np.uint8)  # void stays void
    matrix = np.zeros((source.num_classes, len(targets)), dtype=np.float32)
    for index, (_, ids) in enumerate(targets.values()):
        lookup[ids], matrix[ids, index] = index, 1
    return ClassMap(target, lookup, matrix)


def source_id(word, source, seen, where):
    """The id of a source class named in a --class-map line, each named once."""
    if word not in source.names or word in seen:
        problem = "names a class twice:" if word in seen else "names"
        raise UserError(
            f"--class-map {where} {problem} {word!r}; map each of its source "
            f"classes once: {', '.join(source.names)}"
        )
    seen.add(word)
    return source.names.index(word)
