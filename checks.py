"""Input checks for the DeepLabV3+ tutorial: find the data, pair it, validate it.

Everything here raises `UserError` with a message that says what went wrong, which
file, and what to do next; `deeplabv3_plus.main()` prints it as one `error: ...`
line and exits with code 2.
"""

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
EXIF_ORIENTATION = 0x0112  # the EXIF tag that says how a camera held the photo


class UserError(Exception):
    """A problem with the user's input, reported without a traceback."""


def find_cihp_root(data_dir):
    """Return the folder holding `Training/Images`, searching two levels down."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(
            f"data folder {data_dir} does not exist; pass --data-dir pointing to a "
            "CIHP folder, add --download to fetch CIHP, or omit --data-dir to use "
            "the synthetic data set"
        )
    # The official zip nests the root: instance-level_human_parsing/ twice.
    for candidate in [data_dir, *data_dir.glob("*"), *data_dir.glob("*/*")]:
        if (candidate / "Training" / "Images").is_dir():
            return candidate
    raise UserError(
        f"{data_dir} holds no CIHP data (no Training/Images folder found up to two "
        "levels down); point --data-dir at the extracted CIHP folder or add "
        "--download"
    )


def list_pairs(root, num_train, num_val):
    """Pair sorted images with their masks by file stem; split train/validation."""
    image_dir, mask_dir = (
        root / "Training" / "Images",
        root / "Training" / "Category_ids",
    )
    images = sorted(
        p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not images:
        raise UserError(f"{image_dir} holds no .jpg or .png images; check --data-dir")
    masks = {p.stem: p for p in mask_dir.glob("*.png")} if mask_dir.is_dir() else {}
    unpaired = [p.stem for p in images if p.stem not in masks]
    if unpaired:
        raise UserError(
            f"{len(unpaired)} of {len(images)} images in {image_dir} have no mask in "
            f"{mask_dir} (first: {', '.join(unpaired[:5])}); add the masks as "
            "<stem>.png or remove those images"
        )
    wanted = num_train + num_val
    if len(images) < wanted:
        raise UserError(
            f"{image_dir} holds {len(images)} images but {num_train} training + "
            f"{num_val} validation images were asked for; lower --num-train-images "
            "or --num-val-images"
        )
    pairs = [(str(p), str(masks[p.stem])) for p in images[:wanted]]
    return pairs[:num_train], pairs[num_train:]


def exif_orientation(image):
    """Return the EXIF orientation (1..8) of an opened image, 1 when absent."""
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return orientation if orientation in range(1, 9) else 1


def check_image(path):
    """Fully decode one image file; return its EXIF orientation."""
    try:
        with Image.open(path) as image:
            image.load()  # decodes every pixel, so truncated files fail here
            return exif_orientation(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UserError(
            f"cannot decode image {path} ({error}); replace or remove the file"
        ) from None


def check_mask(path, num_classes):
    """Fully decode one mask and check that its ids lie in 0..num_classes-1."""
    try:
        with Image.open(path) as mask:
            if mask.mode not in ("L", "P", "I", "I;16"):
                raise UserError(
                    f"mask {path} has {len(mask.getbands())} channels (mode "
                    f"{mask.mode}); masks must be single-channel PNGs of class ids"
                )
            ids = np.unique(np.asarray(mask))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UserError(
            f"cannot decode mask {path} ({error}); replace or remove the file"
        ) from None
    bad = ids[(ids < 0) | (ids >= num_classes)]
    if bad.size:
        raise UserError(
            f"mask {path} holds class ids {bad.tolist()[:10]} outside "
            f"0..{num_classes - 1}; fix the mask or remove the pair"
        )


def validate_pairs(pairs, num_classes):
    """Decode every chosen image and mask once; return the images' orientations."""
    orientations = []
    for image_path, mask_path in pairs:
        orientations.append(check_image(image_path))
        check_mask(mask_path, num_classes)
    return orientations


def check_output_dir(output_dir, create=True):
    """Make sure the output folder is, or can become, a writable folder."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(
            f"--output-dir {output_dir} is a file, not a folder; choose another path"
        )
    if not create:
        return output_dir
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create --output-dir {output_dir} ({error.strerror}); choose a "
            "writable folder"
        ) from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise UserError(
            f"--output-dir {output_dir} is not writable; choose a writable folder"
        )
    return output_dir


def check_args(args):
    """Reject sizes and counts that cannot work, before any work is done."""
    for name in [
        "image_size",
        "batch_size",
        "epochs",
        "num_train_images",
        "num_val_images",
    ]:
        if getattr(args, name) <= 0:
            raise UserError(
                f"--{name.replace('_', '-')} must be positive, "
                f"got {getattr(args, name)}"
            )
    if args.image_size % 16:
        raise UserError(
            f"--image-size must be a multiple of 16 (the encoder's output stride), "
            f"got {args.image_size}; try {max(16, round(args.image_size / 16) * 16)}"
        )
    if args.num_train_images < args.batch_size:
        raise UserError(
            f"--num-train-images ({args.num_train_images}) is smaller than "
            f"--batch-size ({args.batch_size}); no full batch could be formed"
        )
    if args.learning_rate <= 0:
        raise UserError(f"--learning-rate must be positive, got {args.learning_rate}")
