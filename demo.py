"""An interactive page for a trained model: upload a photo, see its parts.

`python demo.py --model outputs/model.keras` serves a Gradio app on 127.0.0.1.
The model is loaded once; every prediction runs at the model's input size and is
shown at the photo's own size, as `--predict` writes it. Uploads arrive as plain
files that only this app opens, header first, so a bad upload (not an image,
empty, truncated, a decompression bomb) gets a message in the page that names the
file, never a crash of the server. Gradio's upload cache is a private temporary
folder whose old files are deleted as the app runs.
"""

import argparse
import html
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from deeplab_support import UserError, cli, files, metrics  # first: quiets TensorFlow
from deeplab_support.classes import read_class_map

import deeplabv3_plus as tutorial
from data import make_toy_people

MAX_PIXELS = 25_000_000  # larger uploads are refused: 25 MP takes long on a CPU
EXAMPLE_INDICES = [3, 11, 25]  # synthetic people, rendered at start
DELETE_CACHE = (300, 600)  # every 5 minutes, delete uploads older than 10 minutes


def parse_args(argv=None):
    """Read demo.py's flags."""
    parser = cli.Parser(prog="demo.py", description="Segment photos in the browser.")
    parser.add_argument(
        "--model", type=cli.path_text, default="outputs/model.keras", help="a .keras"
    )
    parser.add_argument(
        "--port", type=port_number, help="local port (default: a free one)"
    )
    parser.add_argument(
        "--tta", choices=["none", "flip"], default="none", help="flip averaging"
    )
    parser.add_argument(
        "--tta-scales", default="1", help="input size multiples, e.g. 0.75,1,1.25 (1)"
    )
    parser.add_argument(
        "--class-map", type=cli.path_text, help="your own label set (see the README)"
    )
    return parser.parse_args(argv)


def port_number(text):
    """A --port value: a TCP port number."""
    if not (text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def free_port(port=0):
    """This TCP port on the loopback address (0: any free one); an error if taken."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise UserError(
                f"cannot serve on port {port} ({error.strerror}); choose another "
                "--port, or leave it out for a free one"
            ) from None
        return probe.getsockname()[1]


def write_examples(folder=None):
    """Render a few synthetic people as PNG files in a private folder; their paths."""
    folder = Path(folder) if folder else files.private_dir("demo")
    paths = []
    for index in EXAMPLE_INDICES:
        path = folder / f"person_{index}.png"
        image, _ = make_toy_people.render_sample(7, index, 240, 320)  # milliseconds
        with open(path, "xb") as f:  # created here, never through an existing name
            Image.fromarray(image).save(f, format="PNG")
        paths.append(str(path))
    return paths


def read_upload(path):
    """The uploaded photo as RGB pixels; an error names the file, never its folder."""
    if not path:
        raise UserError("no image was given; upload a photo or pick an example")
    try:
        return files.read_photo(path, MAX_PIXELS)  # header first: bombs cost nothing
    except UserError as error:
        raise UserError(
            str(error).replace(os.path.dirname(path) + os.sep, "")
        ) from None


class Segmenter:
    """The model, loaded once, and the function that the page calls."""

    def __init__(self, model_path, flip=False, scales="1", class_map=None):
        model, classes = cli.load_model(model_path, "--model")
        self.models = tutorial.at_scales(model, scales)
        self.flip_classes = classes.flip if flip else None  # the model's classes
        class_map = read_class_map(class_map, classes)  # what the page shows
        self.to_target, self.classes = class_map.matrix, class_map.target
        self.colormap = self.classes.palette()

    def __call__(self, path, chosen=()):
        """Return (overlay, colour mask, legend HTML, message, mask file) for one
        photo; the mask file (255 where a pixel is of a chosen class) for download."""
        try:
            start = time.perf_counter()
            image = read_upload(path)
            predicted = tutorial.predict_full_resolution(
                self.models,
                image,
                self.flip_classes,
                self.to_target,
                self.classes.keep_aspect,  # the model's, kept by its class map
            )
            seconds = time.perf_counter() - start
        except UserError as error:
            return None, None, "", f"**Cannot segment this file:** {error}", None
        except Exception as error:  # the page must answer whatever was uploaded
            return (
                None,
                None,
                "",
                f"**Prediction failed:** {type(error).__name__}",
                None,
            )
        colored = tutorial.decode_segmentation_masks(predicted, self.colormap)
        sizes = "/".join(str(model.input_shape[1]) for model in self.models)
        tta = ", flip TTA" if self.flip_classes else ""
        message = (
            f"{image.shape[1]}x{image.shape[0]} px, predicted in "
            f"{seconds * 1000:.0f} ms ({sizes} px model input{tta})"
        )
        overlay = tutorial.get_overlay(image, colored)
        download = self.class_mask(path, predicted, chosen) if chosen else None
        return overlay, colored, self.legend(predicted), message, download

    def class_mask(self, path, predicted, chosen):
        """Save the mask of the chosen classes as --predict --mask-classes does."""
        name, ids = next(
            iter(cli.mask_groups([",".join(chosen)], self.classes).items())
        )
        mask = tutorial.class_mask(predicted, ids)
        for old in files.private_dir("masks").iterdir():  # as Gradio's own cache
            if time.time() - old.stat().st_mtime > DELETE_CACHE[1]:
                shutil.rmtree(old, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(dir=files.private_dir("masks")))
        target = folder / f"{files.shortened(Path(path).stem, 160)}_class-{name}.png"
        Image.fromarray(mask).save(target)
        return str(target)

    def legend(self, predicted):
        """An HTML list of the classes found, with colour and share of the image."""
        shares = metrics.class_shares(predicted, self.classes.names)
        rows = []
        for name, share in shares.items():
            r, g, b = self.colormap[self.classes.names.index(name)]
            swatch = (
                f'<span style="display:inline-block;width:1em;height:1em;'
                f'background:rgb({r},{g},{b});border:1px solid #888"></span>'
            )
            share = metrics.percent(share)
            rows.append(f"<li>{swatch} {html.escape(name)}: {html.escape(share)}</li>")
        return f"<ul style='list-style:none;padding:0'>{''.join(rows)}</ul>"


def build_app(segmenter, examples):
    """The Gradio page: an upload, the overlay, the mask, a legend and timing."""
    # Gradio keeps uploads in GRADIO_TEMP_DIR (a shared /tmp/gradio by default).
    os.environ.setdefault("GRADIO_TEMP_DIR", str(files.private_dir("gradio")))
    import gradio as gr  # only the demo needs Gradio

    first = segmenter(examples[0])  # the page opens with a real prediction
    names = ", ".join(segmenter.classes.names)
    with gr.Blocks(title="DeepLabV3+ segmentation", delete_cache=DELETE_CACHE) as app:
        gr.Markdown(f"# DeepLabV3+ segmentation\nUpload a photo. Classes: {names}.")
        with gr.Row():
            # A file, not gr.Image: gr.Image decodes the upload before our check.
            photo = gr.File(examples[0], label="Photo (JPEG or PNG)", type="filepath")
            overlay = gr.Image(first[0], label="Overlay", format="png")
            mask = gr.Image(first[1], label="Colour mask", format="png")
        with gr.Row():
            legend = gr.HTML(first[2], label="Classes found")
            message = gr.Markdown(first[3])
        with gr.Row():
            classes = list(segmenter.classes.names)
            chosen = gr.CheckboxGroup(classes, label="Classes to mask (0/255 PNG)")
            download = gr.File(label="Mask of the chosen classes")
        button = gr.Button("Segment", variant="primary")
        gr.Examples(examples, inputs=photo)
        inputs, outputs = [photo, chosen], [overlay, mask, legend, message, download]
        button.click(segmenter, inputs=inputs, outputs=outputs, api_name="segment")
        photo.change(segmenter, inputs=inputs, outputs=outputs)
    return app


def main(argv=None):
    """Load the model, render the examples, serve the page until stopped."""
    args = parse_args(argv)
    # SIGTERM stops the server as Ctrl-C does, so the temporary folders go too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    port = free_port(args.port or 0)  # a port in use stops it before the model loads
    flip = args.tta == "flip"
    segmenter = Segmenter(args.model, flip, args.tta_scales, args.class_map)
    app = build_app(segmenter, write_examples())
    print(f"Demo on http://127.0.0.1:{port} (Ctrl-C stops it)", flush=True)
    app.launch(server_name="127.0.0.1", server_port=port, quiet=True)


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        sys.exit(cli.explain(error))
