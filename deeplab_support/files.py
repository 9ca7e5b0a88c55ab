"""The tutorial's files: photos, masks and weights, checked.

Each chosen image and mask is decoded once before training, so a broken file stops
the run with its name, not halfway through. Files that tf.data would misread (an
EXIF-rotated JPEG, a 16-bit or palette mask, a name not in UTF-8) go to it as PNG
copies in a private temporary folder.
"""

import atexit
import hashlib
import os
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from deeplab_support import UserError, progress_bar

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESNET50_WEIGHTS = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET50_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
DECODABLE = ("JPEG", "PNG")  # what tf.image.decode_image reads and we accept
MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's own bomb limit, ~9,400 x 9,400 pixels
EXIF_ORIENTATION = ExifTags.Base.Orientation  # how the camera was held
COUNT_CHECKS_FROM = 1000  # checking this many pairs or more shows a count (~7 s)
_private_dirs = {}  # purpose -> this process's own temporary folder
_originals = {}  # a private copy -> the user's file it copies, named in reports


def list_images(folder, extensions=IMAGE_EXTENSIONS):
    """The regular .jpg and .png files of a folder, sorted by name."""
    if not Path(folder).is_dir():
        return []
    named = [p for p in Path(folder).iterdir() if p.suffix.lower() in extensions]
    return sorted(p for p in named if is_regular_file(p))


def is_regular_file(path, quiet=False):
    """Whether path is a regular file; warn about a FIFO, folder or broken link."""
    try:
        mode = os.stat(path).st_mode  # follows links; a loop or dangling one fails
        problem = None if stat.S_ISREG(mode) else "not a regular file"
    except OSError as error:
        problem = error.strerror
    if problem and not quiet:
        warn(f"skipping {path}: {problem}")
    return not problem


def require_file(path, what, flag=None, hint=""):
    """Refuse a path that is missing, empty, a folder or a FIFO, before opening it."""
    fix = f"check {flag}" if flag else "replace or remove it"
    if not os.path.exists(path):
        raise UserError(f"{what} {path} does not exist; {fix}{hint}")
    if not is_regular_file(path, quiet=True):  # never opened, so never hung on
        raise UserError(f"{what} {path} is not a regular file; {fix}")
    if os.path.getsize(path) == 0:
        raise UserError(f"{what} {path} is empty (0 bytes); {fix}")


def private_dir(purpose):
    """A temporary folder of this process's own (mode 700, unguessable)."""
    if purpose not in _private_dirs:
        try:
            folder = tempfile.mkdtemp(prefix=f"deeplabv3_plus-{purpose}-")
        except OSError as error:
            raise UserError(
                f"cannot create a temporary folder in {tempfile.gettempdir()} "
                f"({error.strerror}); set TMPDIR to a writable folder"
            ) from None
        _private_dirs[purpose] = Path(folder)
    return _private_dirs[purpose]


@atexit.register
def remove_private_dirs():
    """Delete this process's temporary folders (at exit)."""
    while _private_dirs:
        shutil.rmtree(_private_dirs.popitem()[1], ignore_errors=True)


def user_cache_dir(purpose):
    """A folder of this user's own under ~/.cache/deeplabv3_plus, kept across runs."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    folder = Path(base) / "deeplabv3_plus" / purpose
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as error:
        raise UserError(
            f"cannot create the cache folder {folder} ({error.strerror}); set "
            "XDG_CACHE_HOME to a writable folder of yours"
        ) from None
    mine = getattr(os, "getuid", lambda: info.st_uid)() == info.st_uid
    private = sys.platform == "win32" or not info.st_mode & 0o077
    if not (stat.S_ISDIR(info.st_mode) and mine and private):
        raise UserError(
            f"{folder} is not a private folder of yours (a link, or open to others); "
            "remove it, or set XDG_CACHE_HOME to a folder of yours"
        )
    return folder


def check_pairs(pairs, classes, class_map=None, training=False):
    """Decode every image and mask once; return paths that tf.data reads right
    (with a --class-map, masks of its target ids). Say which classes no training
    mask holds."""
    checked, scaled, pixels = [], [], np.zeros(256, np.int64)  # pixels per id
    many = len(pairs) >= COUNT_CHECKS_FROM  # all of CIHP takes minutes: say so
    bar = progress_bar(len(pairs), "checked pair") if many else None
    for image_path, mask_path in pairs:
        image = check_image(image_path)
        mask, ids = check_mask(mask_path, classes, class_map)  # decoded once
        with Image.open(image) as upright:  # its header: the size
            width, height = upright.size
        mask_height, mask_width = ids.shape
        pixels += np.bincount(ids.ravel(), minlength=256)
        # A uniformly scaled mask keeps the aspect ratio, up to a pixel of rounding.
        if abs(mask_height * width / mask_width - height) > 1:
            raise UserError(
                f"mask {mask_path} is {mask_width}x{mask_height} pixels but its image "
                f"{image_path} is {width}x{height} upright; the mask may be "
                "transposed or in the camera's raw orientation (see the photo's EXIF "
                "rotation). Fix the mask to match the upright photo, or remove the pair"
            )
        if (width, height) != (mask_width, mask_height):
            scaled.append(mask_path)
        checked.append((image, mask))
        if bar:
            bar.add(1)
    if scaled:
        warn(
            f"{len(scaled)} mask(s) differ in size from their images by a uniform "
            f"scale (first: {scaled[0]}); they are resized by nearest neighbour"
        )
    present = set(np.flatnonzero(pixels).tolist())
    if pairs and not present - {classes.void}:  # nothing to learn from, or to score
        raise UserError(
            f"the {len(pairs)} masks from {pairs[0][1]} on hold the void label "
            f"{classes.void} alone; label them, or pass their void label as "
            "--ignore-index"
        )
    names = (class_map.target if class_map else classes).names
    missing = [name for i, name in enumerate(names) if i not in present]
    if training and missing:
        warn(
            f"{len(missing)} of the {len(names)} classes occur in none of the "
            f"{len(pairs)} training masks, so the model cannot learn them: "
            f"{', '.join(missing)}. Check that the masks hold the class table's ids "
            f"or colours (in a grey mask, {classes.void} is the void label)"
        )
    return checked


def read_text(path, what):
    """A small text file's contents, or one error line saying why not."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would hang the read
            raise OSError("not a regular file")
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(
            f"cannot read {what} {path} ({error}); fix or replace it"
        ) from None


def warn(message):
    """Print a one-line warning on stderr, apart from the results on stdout."""
    print("warning: " + printable(message), file=sys.stderr)


def printable(text):
    """Text with the bytes of a name that is not UTF-8 shown escaped (\\xff)."""
    return os.fsencode(str(text)).decode("utf-8", "backslashreplace")


def shortened(name, limit):
    """name cut to whole characters of at most `limit` bytes: a file system takes
    255 for a file's name, and ours add to the names of the user's files."""
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def open_checked(path, what, max_pixels=MAX_PIXELS, formats=None):
    """Decode an image file whole, once its header shows that it is safe to."""
    require_file(path, what)
    too_big = f"{what} {path} has more than {max_pixels // 1_000_000} megapixels"
    try:
        with warnings.catch_warnings():  # Pillow warns of a bomb: refused below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            size = f"{image.width}x{image.height} pixels by its header"
            if image.width * image.height > max_pixels:
                raise UserError(f"{too_big} ({size}); downscale it or remove it")
            if formats and image.format not in formats:  # what tf.data decodes
                raise UserError(
                    f"{what} {path} is a {image.format} file; convert it to "
                    f"{' or '.join(formats)}"
                )
            image.load()  # decodes every pixel, so truncated files fail here
        return image
    except Image.DecompressionBombError:  # over twice Pillow's limit
        raise UserError(f"{too_big} by its header; downscale it or remove it") from None
    except UnidentifiedImageError:
        raise UserError(
            f"{what} {path} is not an image that can be read; replace or remove it"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(
            f"cannot decode {what} {path} ({error}); replace or remove it"
        ) from None


def check_image(path):
    """Check an image; return a path the pipeline decodes upright and in RGB."""
    image = open_checked(path, "image", formats=DECODABLE)
    if image.getexif().get(EXIF_ORIENTATION, 1) == 1 and is_utf8(path):
        return str(path)
    return plain_copy(path, upright(image))


def upright(image, mode="RGB"):
    """An upright 8-bit RGB (or RGBA) copy of a photo; 16-bit grey keeps its high
    byte."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I"):  # 16-bit grey: as tf.image reads it, not clipped
        grey = np.asarray(image).astype(np.uint32) >> 8
        image = Image.fromarray(grey.clip(0, 255).astype(np.uint8))
    if image.mode == "P":  # by way of RGBA, or Pillow warns of a transparent colour
        image = image.convert("RGBA")
    return image.convert(mode)


def check_mask(path, classes, class_map=None):
    """Check a mask's labels; return a path the pipeline reads as 8-bit ids, and
    the ids (of a --class-map's targets)."""
    mask = open_checked(path, "mask")
    ids = mask_ids(mask, path, classes)
    if mask.format == "JPEG":  # lossy compression blurs ids into their neighbours
        warn(
            f"mask {path} is a JPEG file; its edges may hold class ids that nobody "
            "drew. Save masks as PNG"
        )
    if class_map and class_map.matrix is not None:  # --class-map: the target ids
        ids = class_map.lookup[ids]
        return plain_copy(path, Image.fromarray(ids), class_map.lookup.tobytes()), ids
    if mask.mode == "L" and mask.format == "PNG" and is_utf8(path):
        return str(path), ids
    return plain_copy(path, Image.fromarray(ids)), ids


def mask_ids(mask, path, classes):
    """The class ids of a decoded mask: grey ids, palette indices or colours."""
    if mask.mode == "1":  # two-level: ids 0 and 1
        mask = Image.fromarray(np.asarray(mask, np.uint8))
    if mask.mode == "LA":  # grey ids and an alpha channel
        mask = mask.convert("L")
    if mask.mode == "P" and colour_coded(mask, classes):
        mask = mask.convert("RGBA")  # not RGB: Pillow warns of a transparent colour
    if mask.mode in ("RGB", "RGBA"):  # look each colour up in the class table
        pixels = np.asarray(mask.convert("RGB"), np.int32) @ np.int32([65536, 256, 1])
        codes, inverse, n = np.unique(pixels, return_inverse=True, return_counts=True)
        ids = [classes.void, *range(classes.num_classes)]
        colors = [classes.void_color, *classes.colors]  # a class wins over void
        table = {r << 16 | g << 8 | b: i for i, (r, g, b) in zip(ids, colors)}
        unknown = ~np.isin(codes, list(table))
        if unknown.any():
            rgb = [(c >> 16, c >> 8 & 255, c & 255) for c in codes[unknown].tolist()]
            raise UserError(
                f"mask {path} holds {counted('colour', rgb, n[unknown])} that no "
                "class has (nor the void colour); fix the mask or add the class to "
                "labelmap.txt"
            )
        ids = np.uint8([table[c] for c in codes.tolist()])
        return ids[inverse].reshape(pixels.shape)
    if mask.mode not in ("L", "P", "I", "I;16", "I;16B"):
        raise UserError(
            f"mask {path} has mode {mask.mode}; masks must be PNGs of class ids "
            "(grey or palette) or of class colours (RGB)"
        )
    ids = np.asarray(mask)
    known = (ids < classes.num_classes) | (ids == classes.void)
    if not known.all():
        values, counts = np.unique(ids[~known], return_counts=True)
        raise UserError(
            f"mask {path} holds {counted('id', values, counts)}, neither a class id "
            f"(0..{classes.num_classes - 1}) nor the void label {classes.void}; fix "
            "the mask, or pass the void label as --ignore-index"
        )
    return ids.astype(np.uint8)


def colour_coded(mask, classes):
    """Whether a palette mask's colours, not its indices, are its classes: a colour
    mask saved with a palette of its own (an "indexed" PNG, as GIMP saves one)."""
    palette = np.zeros((256, 3), np.uint8)
    listed = np.asarray(mask.getpalette("RGB") or [], np.uint8).reshape(-1, 3)
    palette[: len(listed)] = listed
    used = np.unique(np.asarray(mask))
    colours = {tuple(colour) for colour in palette[used].tolist()}
    return (
        (palette[used] != classes.palette()[used]).any()  # not the table's own
        and len(colours) == len(used)  # a colour an index, each a class's
        and colours <= {*classes.colors, classes.void_color}
    )


def counted(what, values, counts):
    """Say which values occur on how many pixels: 'id 25 on 3 pixels, ...'."""
    pairs = zip(values, counts)
    shown = [f"{what} {v} on {n} pixel{'' if n == 1 else 's'}" for v, n in pairs]
    return ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if shown[5:] else "")


def is_utf8(path):
    """Whether TensorFlow takes path as a string (undecodable bytes are surrogates)."""
    return not any("\ud800" <= c <= "\udfff" for c in str(path))


def plain_copy(path, image, salt=b""):
    """Save an 8-bit PNG copy of a decoded file in a private folder; return its path."""
    key = os.fsencode(path) + f"{Path(path).stat().st_mtime_ns}".encode() + salt
    copy = private_dir("inputs") / f"{hashlib.sha1(key).hexdigest()[:20]}.png"
    if not os.path.lexists(copy):  # the folder is this process's alone (mkdtemp)
        with open(copy, "xb") as f:  # created here, never through an existing name
            image.save(f, format="PNG")
    _originals[str(copy)] = path
    return str(copy)


def original(path):
    """The user's file of which path is a private copy; else path itself."""
    return _originals.get(str(path), path)


def read_photo(path, max_pixels=MAX_PIXELS, mode="RGB"):
    """Read a photo as upright RGB (or RGBA: opaque where it has no alpha) uint8 at
    its own size."""
    return np.asarray(upright(open_checked(path, "image", max_pixels, DECODABLE), mode))


def read_mask(path, shape, classes):
    """Read a mask's class ids at its image's size (nearest neighbour if needed)."""
    mask = Image.fromarray(mask_ids(open_checked(path, "mask"), path, classes))
    return np.asarray(mask.resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def backbone_weights(weights):
    """The ImageNet ResNet50 weights file for --weights imagenet, else None."""
    if weights != "imagenet":
        return None
    cache_dir = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return keras.utils.get_file(  # named as the URL's file
            origin=RESNET50_URL + RESNET50_WEIGHTS,
            cache_dir=cache_dir,
            cache_subdir="models",
            file_hash="4d473c1dd8becc155b73f8504c6f6626",
        )
    except Exception as error:  # get_file wraps every network failure this way
        raise UserError(
            f"could not download the ImageNet ResNet50 weights ({error}); train from "
            f"scratch with --weights none, or put the file at "
            f"{cache_dir / 'models' / RESNET50_WEIGHTS}"
        ) from None


def load_weights(model, weights):
    """Load --weights FILE (a .keras or .weights.h5 file) into the built model."""
    if weights in ("imagenet", "none"):
        return
    require_file(weights, "weights file", "--weights")
    fresh = [layer.get_weights() for layer in model.layers]
    for layer, arrays in zip(model.layers, fresh):  # NaN marks what the file skips
        layer.set_weights([np.full_like(w, np.nan) for w in arrays])
    reason = "no layer fits"
    try:
        with warnings.catch_warnings(action="ignore"):  # one per skipped layer
            model.load_weights(weights, skip_mismatch=True)
    except Exception as error:  # raised for a wrong file, or after skipping
        reason = str(error)[:200]
    skipped = []
    for i, layer in enumerate(model.layers):
        if any(np.isnan(w).any() for w in layer.get_weights()):
            layer.set_weights(fresh[i])  # as built: the classifier of new classes
            skipped.append(i)
    if skipped == [len(model.layers) - 2]:  # the 1x1 classifier before upsampling
        print(
            f"Loaded {weights} except its classifier, which starts afresh for "
            f"{model.output_shape[-1]} classes."
        )
    elif skipped:
        size = model.input_shape[1]
        raise UserError(
            f"cannot load --weights {weights} into a {size}x{size}, "
            f"{model.output_shape[-1]}-class DeepLabV3+ ({reason}); pass a .keras "
            "or .weights.h5 file saved by this script"
        )
