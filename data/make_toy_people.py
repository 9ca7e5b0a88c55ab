"""Synthetic "toy people" segmentation data, in the CIHP layout or another one.

The generator draws simple cartoon people (head, hair, clothes, limbs, shoes)
on textured backgrounds and writes them exactly like the Crowd Instance-level
Human Parsing (CIHP) data set, so the tutorial can train and be tested offline::

    <root>/human_colormap.mat                # "colormap": (20, 3) float64 in [0, 1]
    <root>/Training/Images/0000000.jpg       # RGB JPEG, varied non-square sizes
    <root>/Training/Category_ids/0000000.png # 8-bit mask, pixel = class id 0..19
    <root>/Validation/Images/1000000.jpg     # held-out images, as CIHP's official
    <root>/Validation/Category_ids/1000000.png  # validation split
    <root>/toy_people.json                   # marker: the generation parameters

``--layout`` writes the same people in other layouts, to try the tutorial's own-data
paths offline: ``voc`` (``VOCdevkit/VOC2012`` with palette masks in VOC's 21
classes, the people as "person", and void (255) bands along their outlines),
``cvat`` (the same layout with a ``labelmap.txt`` and colour masks of nine coarse
parts, as annotation tools export it) and ``folder`` (``images/``, ``masks/``,
``val/`` and a ``labelmap.txt``, colour masks of the same parts).

Left/right convention: as in CIHP the people face the camera, so a person's
*left* arm, leg and shoe (``Left-arm``, ``Left-leg``, ``Left-shoe``) appear on
the *right* side of the image (larger x), and the ``Right-*`` parts on the
image's left.

Every part is painted into the image (with its colour) and into the mask (with
its class id) in the same call, back to front, so overlaps agree exactly.  Masks
are exact; images carry JPEG artefacts, blur and pixel noise.

Generation is deterministic: image ``i`` depends only on ``(seed, i)`` and the
size range (validation image ``j`` is sample ``VAL_OFFSET + j``), and the same
arguments give byte-identical files.  Files are written into a temporary sibling
directory that replaces ``root`` only when complete, so an interrupted run never
looks finished.  ``root`` is claimed as the tutorial's outputs are: the
``run.json`` beside it lists it, and a ``root`` that this project did not make is
left alone (a ``UserError``).

Run ``python -m data.make_toy_people --help`` to generate a set from the shell.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import types
from itertools import chain

import cv2
import numpy as np
import scipy.io
from PIL import Image

from deeplab_support import runs
from deeplab_support.classes import CIHP, VOC, VOID, ClassTable

CLASS_NAMES = CIHP.names  # CIHP's table, as every user of it reads it
CIHP_PALETTE = np.array(CIHP.colors, dtype=np.uint8)
LAYOUTS = ("cihp", "voc", "cvat", "folder")
# The other layouts label coarser parts, with sides named another way: how a data
# set of your own might look. VOC marks the whole person as "person".
PARTS = ClassTable(
    ("background", "head", "upper_body", "lower_body", "left_arm", "right_arm")
    + ("left_leg", "right_leg", "shoes"),
    [(0, 0, 0), (230, 180, 40), (200, 40, 40), (40, 60, 200), (40, 200, 40)]
    + [(160, 240, 160), (200, 40, 200), (240, 160, 240), (120, 120, 120)],
)
# CIHP id -> part id: Hat, Hair, Sunglasses, Face are the head; and so on.
TO_PARTS = np.array([0, 1, 1, 2, 1, 2, 2, 2, 3, 3, 2, 2, 3, 1, 4, 5, 6, 7, 8, 8])
TO_VOC = np.array([0] + [VOC.names.index("person")] * 19)

MARKER_NAME = "toy_people.json"
VAL_OFFSET = 1_000_000  # validation samples come from their own index range

BACKGROUND, HAT, HAIR, GLOVE, SUNGLASSES, UPPER, DRESS, COAT, SOCKS, PANTS = range(10)
TORSO_SKIN, SCARF, SKIRT, FACE, L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE = range(
    10, 20
)

# Mean RGB colour and spread of each garment's colour family.  Families overlap
# a little, so position and shape matter as well as colour.
_FAMILIES = {
    HAT: ((150, 45, 45), 45),
    GLOVE: ((70, 70, 85), 30),
    SUNGLASSES: ((25, 25, 30), 10),
    UPPER: ((205, 90, 60), 45),
    DRESS: ((160, 60, 150), 45),
    COAT: ((80, 95, 55), 35),
    SOCKS: ((225, 225, 220), 25),
    PANTS: ((50, 70, 135), 35),
    SCARF: ((220, 190, 50), 40),
    SKIRT: ((40, 140, 140), 40),
    L_SHOE: ((50, 35, 25), 25),
}
_HAIR_COLOURS = ((25, 20, 15), (95, 60, 30), (205, 170, 100), (125, 50, 25))
_SKIN_LIGHT, _SKIN_DARK = np.array([240, 200, 170]), np.array([95, 60, 40])
# Class id on the person's right (image left, side -1) and left (image right, +1).
_SIDED = {"arm": (R_ARM, L_ARM), "leg": (R_LEG, L_LEG), "shoe": (R_SHOE, L_SHOE)}
# savemat stamps the creation time into the 116-byte text header; a fixed header
# keeps the file byte-identical between runs.
_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: toy_people"


class _Figure:
    """Paints one person into an image and its mask in figure coordinates.

    Coordinates are fractions of the figure height: x relative to the body's
    centre line, y down from the top of the head.
    """

    def __init__(self, image, mask, centre_x, top, height):
        """Remember the canvas and where the figure stands on it."""
        self.image, self.mask = image, mask
        self.cx, self.top, self.h = float(centre_x), float(top), float(height)

    def pt(self, x, y):
        """Convert a figure point to integer pixel coordinates."""
        return int(round(self.cx + x * self.h)), int(round(self.top + y * self.h))

    def px(self, length):
        """Convert a figure length to a pixel count of at least one."""
        return max(1, int(round(length * self.h)))

    def _targets(self, cls, colour):
        """Pair the image with its colour and the mask with the class id."""
        return ((self.image, colour), (self.mask, int(cls)))

    def ellipse(self, cls, colour, centre, axes, start=0, end=360):
        """Fill an axis-aligned ellipse (or the arc sector start..end degrees)."""
        size = (self.px(axes[0]), self.px(axes[1]))
        for target, value in self._targets(cls, colour):
            cv2.ellipse(target, self.pt(*centre), size, 0, start, end, value, -1)

    def poly(self, cls, colour, points):
        """Fill a polygon."""
        pts = np.array([self.pt(x, y) for x, y in points], np.int32)
        for target, value in self._targets(cls, colour):
            cv2.fillPoly(target, [pts], value)

    def line(self, cls, colour, start, end, width):
        """Draw a thick round-capped segment, used for limbs."""
        for target, value in self._targets(cls, colour):
            cv2.line(target, self.pt(*start), self.pt(*end), value, self.px(width))

    def circle(self, cls, colour, centre, radius):
        """Fill a circle."""
        for target, value in self._targets(cls, colour):
            cv2.circle(target, self.pt(*centre), self.px(radius), value, -1)


def _lerp(p, q, t):
    """Interpolate between two points."""
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _rgb(values):
    """Clip three channel values to [0, 255] as a tuple for OpenCV drawing."""
    return tuple(min(255.0, max(0.0, float(v))) for v in values)


def _family_colour(rng, cls):
    """Draw one person's colour for a class from its colour family."""
    base, spread = _FAMILIES[cls]
    # A shared shift varies brightness; per-channel noise varies the hue.
    colour = np.add(base, rng.normal(0, 0.6 * spread) + rng.normal(0, 0.4 * spread, 3))
    return _rgb(colour)


def _skin_colour(rng):
    """Draw a skin tone between light and dark."""
    tone = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * rng.random()
    return _rgb(tone + rng.normal(0, 8, 3))


def _sample_outfit(rng):
    """Choose which garments and accessories a person wears."""
    dress = rng.random() < 0.2
    coat = not dress and rng.random() < 0.25
    lower = "dress" if dress else rng.choice(["pants", "skirt"], p=[0.75, 0.25])
    return types.SimpleNamespace(
        dress=dress,
        coat=coat,
        lower=str(lower),
        pants_length=float(rng.choice([1.0, 0.8, 0.35], p=[0.6, 0.2, 0.2])),
        sleeves=("long" if coat else str(rng.choice(["none", "short", "long"]))),
        v_neck=rng.random() < 0.35,
        scarf=rng.random() < 0.18,
        hat=rng.random() < 0.25,
        sunglasses=rng.random() < 0.2,
        gloves=rng.random() < 0.15,
        socks=rng.random() < 0.35,
        long_hair=rng.random() < 0.35,
    )


def _sample_colours(rng):
    """Choose a person's skin, hair and garment colours."""
    colours = {cls: _family_colour(rng, cls) for cls in sorted(_FAMILIES)}
    colours[R_SHOE] = colours[L_SHOE]
    hair = np.add(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], rng.normal(0, 12, 3))
    colours[HAIR] = _rgb(hair)
    colours["skin"] = _skin_colour(rng)
    return colours


def _sample_pose(rng):
    """Choose body proportions and limb angles (radians, outward from down)."""
    shoulder = rng.uniform(0.09, 0.12)
    return types.SimpleNamespace(
        shoulder=shoulder,
        waist=shoulder * rng.uniform(0.7, 0.85),
        upper_arm=rng.uniform(np.radians(5), np.radians(35), 2),
        forearm=rng.uniform(np.radians(-25), np.radians(70), 2),
        splay=rng.uniform(0.0, 0.04),
        hem=rng.uniform(0.62, 0.78),
        hem_width=rng.uniform(0.12, 0.17),
        coat_gap=rng.uniform(0.015, 0.04),
    )


def _sample_person(rng):
    """Choose everything that describes one person."""
    return types.SimpleNamespace(
        outfit=_sample_outfit(rng), colours=_sample_colours(rng), pose=_sample_pose(rng)
    )


def _leg_points(pose, side):
    """Return the hip and ankle of the leg on a side (-1 image left, +1 right)."""
    return (side * 0.05, 0.52), (side * (0.05 + pose.splay), 0.9)


def _draw_legs(fig, person):
    """Draw bare legs, socks and shoes."""
    skin, outfit = person.colours["skin"], person.outfit
    for index, side in enumerate((-1, 1)):
        hip, ankle = _leg_points(person.pose, side)
        fig.line(_SIDED["leg"][index], skin, hip, ankle, 0.065)
        if outfit.socks:
            fig.line(SOCKS, person.colours[SOCKS], _lerp(hip, ankle, 0.82), ankle, 0.07)
        shoe = _SIDED["shoe"][index]
        centre = (ankle[0] + side * 0.015, ankle[1] + 0.025)
        fig.ellipse(shoe, person.colours[shoe], centre, (0.045, 0.025))


def _draw_lower(fig, person):
    """Draw pants or a skirt (a dress is drawn with the torso)."""
    pose, outfit = person.pose, person.outfit
    w = pose.waist
    if outfit.lower == "pants":
        colour = person.colours[PANTS]
        fig.poly(
            PANTS, colour, [(-w, 0.47), (w, 0.47), (w + 0.01, 0.56), (-w - 0.01, 0.56)]
        )
        for side in (-1, 1):
            hip, ankle = _leg_points(pose, side)
            hem = _lerp(hip, ankle, outfit.pants_length)
            fig.line(PANTS, colour, hip, hem, 0.08)
    elif outfit.lower == "skirt":
        hem, width = pose.hem - 0.03, pose.hem_width - 0.01
        corners = [(-w, 0.47), (w, 0.47), (width, hem), (-width, hem)]
        fig.poly(SKIRT, person.colours[SKIRT], corners)


def _torso_outline(pose, bottom, bottom_width):
    """Return the torso polygon from the shoulders down to a hem."""
    s, w = pose.shoulder, pose.waist
    return [
        (-s, 0.2),
        (s, 0.2),
        (s + 0.015, 0.23),
        (w, 0.45),
        (bottom_width, bottom),
        (-bottom_width, bottom),
        (-w, 0.45),
        (-s - 0.015, 0.23),
    ]


def _draw_torso(fig, person):
    """Draw the neck, the top or dress, an optional V-neck and an open coat."""
    pose, outfit, colours = person.pose, person.outfit, person.colours
    fig.poly(
        TORSO_SKIN,
        colours["skin"],
        [(-0.022, 0.13), (0.022, 0.13)] + [(0.022, 0.21), (-0.022, 0.21)],
    )
    if outfit.dress:
        outline = _torso_outline(pose, pose.hem, pose.hem_width)
        fig.poly(DRESS, colours[DRESS], outline)
    else:
        fig.poly(UPPER, colours[UPPER], _torso_outline(pose, 0.52, pose.waist))
    if outfit.v_neck:
        fig.poly(TORSO_SKIN, colours["skin"], [(-0.03, 0.2), (0.03, 0.2), (0, 0.27)])
    if outfit.coat:
        s, w, gap = pose.shoulder, pose.waist, pose.coat_gap
        for side in (-1, 1):
            panel = [(gap, 0.2), (s + 0.02, 0.2), (s + 0.03, 0.23), (w + 0.03, 0.6)]
            panel.append((gap, 0.6))
            fig.poly(COAT, colours[COAT], [(side * x, y) for x, y in panel])


def _sleeve_class(outfit):
    """Return the class of the garment whose sleeves cover the arms."""
    return COAT if outfit.coat else DRESS if outfit.dress else UPPER


def _draw_arms(fig, person):
    """Draw both arms with hands, sleeves and optional gloves."""
    pose, outfit, colours = person.pose, person.outfit, person.colours
    sleeve = _sleeve_class(outfit)
    for index, side in enumerate((-1, 1)):
        a1, a2 = pose.upper_arm[index], pose.forearm[index]
        shoulder = (side * pose.shoulder, 0.23)
        elbow = (shoulder[0] + side * 0.15 * np.sin(a1), 0.23 + 0.15 * np.cos(a1))
        hand = (elbow[0] + side * 0.14 * np.sin(a2), elbow[1] + 0.14 * np.cos(a2))
        arm = _SIDED["arm"][index]
        fig.line(arm, colours["skin"], shoulder, elbow, 0.045)
        fig.line(arm, colours["skin"], elbow, hand, 0.04)
        fig.circle(arm, colours["skin"], hand, 0.025)
        if outfit.sleeves == "short":
            fig.line(
                sleeve, colours[sleeve], shoulder, _lerp(shoulder, elbow, 0.6), 0.055
            )
        elif outfit.sleeves == "long":
            fig.line(sleeve, colours[sleeve], shoulder, elbow, 0.055)
            fig.line(sleeve, colours[sleeve], elbow, _lerp(elbow, hand, 0.85), 0.05)
        if outfit.gloves:
            fig.circle(GLOVE, colours[GLOVE], hand, 0.03)


def _draw_scarf(fig, person):
    """Draw a scarf wrapped round the neck with one hanging end."""
    colour = person.colours[SCARF]
    fig.ellipse(SCARF, colour, (0, 0.19), (0.05, 0.03))
    fig.poly(SCARF, colour, [(0.005, 0.19), (0.04, 0.19), (0.045, 0.33), (0.01, 0.33)])


def _draw_head(fig, person):
    """Draw the face, the hair cap and optional sunglasses and hat."""
    outfit, colours = person.outfit, person.colours
    fig.ellipse(FACE, colours["skin"], (0, 0.09), (0.048, 0.062))
    # The upper half of an ellipse above the face is the fringe.
    fig.ellipse(HAIR, colours[HAIR], (0, 0.065), (0.054, 0.05), 180, 360)
    if outfit.sunglasses:
        fig.poly(
            SUNGLASSES,
            colours[SUNGLASSES],
            [(-0.045, 0.08), (0.045, 0.08)] + [(0.045, 0.097), (-0.045, 0.097)],
        )
    if outfit.hat:
        fig.ellipse(HAT, colours[HAT], (0, 0.045), (0.055, 0.045), 180, 360)
        fig.ellipse(HAT, colours[HAT], (0, 0.045), (0.08, 0.012))


def _draw_person(fig, person):
    """Draw a whole person back to front so nearer parts overwrite farther ones."""
    # Hair behind the head shows at the sides of the neck and the shoulders.
    fig.ellipse(HAIR, person.colours[HAIR], (0, 0.08), (0.058, 0.07))
    if person.outfit.long_hair:
        fig.poly(
            HAIR,
            person.colours[HAIR],
            [(-0.058, 0.08), (0.058, 0.08)] + [(0.065, 0.26), (-0.065, 0.26)],
        )
    _draw_legs(fig, person)
    _draw_lower(fig, person)
    _draw_torso(fig, person)
    if person.outfit.scarf:
        _draw_scarf(fig, person)
    _draw_arms(fig, person)
    _draw_head(fig, person)


def _smooth_noise(rng, height, width, channels, cells):
    """Return low-frequency noise in [0, 1]: an upsampled random grid."""
    grid = rng.random((cells[0], cells[1], channels)).astype(np.float32)
    noise = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return noise.reshape(height, width, channels)


def _ramp(height, width, x_step, y_step):
    """Return the float32 linear ramp x * x_step + y * y_step over the pixels."""
    x = np.arange(width, dtype=np.float32) * np.float32(x_step)
    y = np.arange(height, dtype=np.float32) * np.float32(y_step)
    return y[:, None] + x[None, :]


def _pattern(rng, height, width):
    """Return a stripe or rectangle pattern (or nothing) to add to a background."""
    kind = rng.choice(["stripes", "rectangles", "none"], p=[0.35, 0.35, 0.3])
    layer = np.zeros((height, width, 3), np.float32)
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
        phase = _ramp(height, width, np.cos(angle), np.sin(angle))
        wave = np.sin(phase * np.float32(2 * np.pi / period))
        layer = wave[..., None] * rng.uniform(-40, 40, 3).astype(np.float32)
    elif kind == "rectangles":
        for _ in range(rng.integers(2, 7)):
            x0, x1 = np.sort(rng.integers(0, width, 2))
            y0, y1 = np.sort(rng.integers(0, height, 2))
            colour = tuple(float(c) for c in rng.uniform(-60, 60, 3))
            cv2.rectangle(layer, (int(x0), int(y0)), (int(x1), int(y1)), colour, -1)
    return layer


def _background(rng, height, width):
    """Return a textured float32 background: gradient, smooth noise and pattern."""
    start, end = rng.uniform(20, 235, (2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = _ramp(height, width, np.cos(angle) / width, np.sin(angle) / height)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    image = start + (end - start) * ramp[..., None]
    cells = tuple(int(c) for c in rng.integers(2, 7, 2))
    noise = _smooth_noise(rng, height, width, 3, cells) - 0.5
    image += noise * rng.uniform(20, 80)
    image += _pattern(rng, height, width)
    return np.clip(image, 0, 255)


def _place_figures(rng, image, mask):
    """Draw one to three people, smaller (farther) ones first."""
    height, width = mask.shape
    count = rng.choice([1, 2, 3], p=[0.7, 0.25, 0.05])
    heights = np.sort(rng.uniform(0.75, 0.95, count) * height)
    # One shared fraction of the free space above the feet keeps a ground
    # plane: nearer (taller) people stand lower, so they overlap plausibly.
    ground = rng.uniform(0, 1)
    for figure_height in heights:
        top = (height - 0.95 * figure_height) * ground
        centre_x = rng.uniform(0.05, 0.95) * width
        fig = _Figure(image, mask, centre_x, top, figure_height)
        _draw_person(fig, _sample_person(rng))


def _finish(rng, image):
    """Add lighting, slight blur and pixel noise, and convert to uint8."""
    height, width = image.shape[:2]
    cells = tuple(int(c) for c in rng.integers(2, 5, 2))
    light = 0.85 + 0.3 * _smooth_noise(rng, height, width, 1, cells)
    image = cv2.GaussianBlur(image * light, (3, 3), 0.6)
    sigma = np.float32(rng.uniform(2, 7))
    image += rng.standard_normal(image.shape, dtype=np.float32) * sigma
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def render_sample(seed, index, min_size=96, max_size=160, aspect=None):
    """Return the RGB image and mask of sample ``index`` without writing files.

    With an ``aspect`` (height / width), every image has it: 2 gives tall people.
    """
    rng = np.random.default_rng([seed, index])
    height, width = (int(s) for s in rng.integers(min_size, max_size + 1, 2))
    if aspect:
        width = max(16, round(height / aspect))
    image = np.ascontiguousarray(_background(rng, height, width), np.float32)
    mask = np.zeros((height, width), np.uint8)
    _place_figures(rng, image, mask)
    return _finish(rng, image), mask


def _colormap_bytes():
    """Return the contents of human_colormap.mat, identical on every run."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"colormap": CIHP_PALETTE / 255.0})
    data = bytearray(buffer.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def _parameters(
    num_images, seed, min_size, max_size, num_val_images=0, layout="cihp", aspect=None
):
    """Return the marker contents for a set of generation parameters."""
    if min(num_images, num_val_images) < 0 or not 16 <= min_size <= max_size:
        raise ValueError("need image counts >= 0 and 16 <= min_size <= max_size")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
    if aspect is not None and not 0.1 <= aspect <= 10:
        raise ValueError("aspect (height / width) must lie in 0.1..10")
    return {
        **({"aspect": float(aspect)} if aspect else {}),  # older markers have none
        "layout": layout,
        "num_images": int(num_images),
        "num_val_images": int(num_val_images),
        "seed": int(seed),
        "min_size": int(min_size),
        "max_size": int(max_size),
    }


def _write_set(directory, params, progress=None):
    """Write the colormap, all samples and, last, the marker into a directory."""
    train = range(params["num_images"])
    val = range(VAL_OFFSET, VAL_OFFSET + params["num_val_images"])
    if params["layout"] == "cihp":
        (directory / "human_colormap.mat").write_bytes(_colormap_bytes())
        _write_samples(directory / "Training", train, params, progress=progress)
        _write_samples(directory / "Validation", val, params, progress=progress)
    elif params["layout"] == "folder":
        _write_labelmap(directory / "labelmap.txt")
        _write_samples(directory, train, params, "images", "masks", progress=progress)
        _write_samples(
            directory / "val", val, params, "images", "masks", progress=progress
        )
    else:  # voc, cvat: the folders of VOCdevkit/VOC2012, as the archive has them
        voc = directory / "VOCdevkit" / "VOC2012"
        folders = "JPEGImages", "SegmentationClass"
        _write_samples(voc, chain(train, val), params, *folders, progress=progress)
        lists = voc / "ImageSets" / "Segmentation"
        lists.mkdir(parents=True)
        for name, indices in (("train.txt", train), ("val.txt", val)):
            (lists / name).write_text("".join(f"{i:07d}\n" for i in indices))
        if params["layout"] == "cvat":
            _write_labelmap(voc / "labelmap.txt")
    marker = json.dumps(params, sort_keys=True)
    (directory / MARKER_NAME).write_text(marker + "\n", encoding="utf-8")


def _write_labelmap(path):
    """Write the parts' labelmap.txt as CVAT exports it."""
    lines = ["# label:color_rgb:parts:actions"]
    lines += [f"{n}:{r},{g},{b}::" for n, (r, g, b) in zip(PARTS.names, PARTS.colors)]
    path.write_text("\n".join(lines) + "\n")


def _write_samples(
    split_dir, indices, params, images="Images", masks="Category_ids", progress=None
):
    """Write samples with these indices as <images>/*.jpg and <masks>/*.png."""
    images, masks = split_dir / images, split_dir / masks
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for index in indices:
        sizes = params["min_size"], params["max_size"], params.get("aspect")
        image, mask = render_sample(params["seed"], index, *sizes)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        quality = [cv2.IMWRITE_JPEG_QUALITY, 90]
        cv2.imwrite(str(images / f"{index:07d}.jpg"), bgr, quality)
        _write_mask(masks / f"{index:07d}.png", mask, params["layout"])
        if progress:
            progress()


def _write_mask(path, mask, layout):
    """CIHP: grey ids; VOC: palette ids with void bands; else class colours."""
    if layout == "cihp":
        cv2.imwrite(str(path), mask)
    elif layout == "voc":
        ids = TO_VOC[mask].astype(np.uint8)
        # VOC marks a band along every object's outline as void (255).
        kernel = np.ones((3, 3), np.uint8)
        ids[cv2.dilate(ids, kernel) != cv2.erode(ids, kernel)] = VOID
        palette = Image.fromarray(ids)
        palette.putpalette(VOC.palette().ravel().tolist())
        palette.save(path)
    else:
        colours = np.array(PARTS.colors, np.uint8)[TO_PARTS[mask]]
        Image.fromarray(colours).save(path)


def generate(
    root,
    num_images=250,
    seed=0,
    min_size=96,
    max_size=160,
    num_val_images=50,
    layout="cihp",
    progress=None,
    aspect=None,
):
    """Write a toy-people data set in this layout under root and return root.

    `progress`, if given, is called once after each image is written; `aspect`
    (height / width), if given, is every image's.
    """
    root = pathlib.Path(root)
    params = _parameters(
        num_images, seed, min_size, max_size, num_val_images, layout, aspect
    )
    fix = "delete it if it is a synthetic set of an older release"
    runs.claim(root.parent, [root.name], "the synthetic data set", fix=fix)
    with runs.atomic_path(root, folder=True) as staging:  # never a half-written set
        _write_set(staging, params, progress)
    runs.release(root.parent)  # done: a training run may go on for hours
    return root


def ensure(
    root,
    num_images=250,
    seed=0,
    min_size=96,
    max_size=160,
    num_val_images=50,
    layout="cihp",
    progress=None,
):
    """Return root, generating the set first unless its marker matches."""
    root = pathlib.Path(root)
    params = _parameters(num_images, seed, min_size, max_size, num_val_images, layout)
    try:
        marker = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = None
    if marker == params:
        return root
    sizes = min_size, max_size
    return generate(root, num_images, seed, *sizes, num_val_images, layout, progress)


def _parse_args(argv=None):
    """Parse the command line of the generator script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options = (
        ("--root", pathlib.Path, "data/toy_people", "directory to write to"),
        ("--num-images", int, 250, "number of image/mask pairs"),
        ("--num-val-images", int, 50, "number of validation pairs"),
        ("--seed", int, 0, "random seed"),
        ("--min-size", int, 96, "smallest image height or width in pixels"),
        ("--max-size", int, 160, "largest image height or width in pixels"),
        ("--layout", str, "cihp", "cihp, voc, cvat (VOC with a labelmap) or folder"),
    )
    for flag, kind, default, text in options:
        help_text = f"{text} (default: %(default)s)"
        parser.add_argument(flag, type=kind, default=kind(default), help=help_text)
    tall = "every image's height / width, e.g. 2 for tall people (default: random)"
    parser.add_argument("--aspect", type=float, help=tall)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse_args()
    generate(
        args.root,
        args.num_images,
        args.seed,
        args.min_size,
        args.max_size,
        args.num_val_images,
        args.layout,
        aspect=args.aspect,
    )
    print(
        f"Wrote {args.num_images} + {args.num_val_images} validation toy-people "
        f"images in the {args.layout} layout to {args.root}"
    )
