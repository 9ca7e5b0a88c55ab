"""Video for `--predict clip.mp4`: frames in; an overlay video and ids out.

For each clip, `<name>_overlay.mp4` has the clip's frame count, rate and size (an
odd side one pixel less: MPEG-4 takes even sides), and `<name>_ids/` one palette
PNG of class ids per frame at the clip's size (`000000.png`, ...; a lossy
video would blur the ids), both claimed like every output and moved into place
when the clip is done. The *flicker* printed is the share of pixels whose class
changes from one frame to the next.
"""

import os
import time
from pathlib import Path

import cv2

from deeplab_support import UserError, files, runs
from deeplab_support.classes import ids_png

EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# FFmpeg, inside OpenCV, logs a broken file's details ("moov atom not found") to
# stderr before our one line says so; quiet unless the user asks for its log.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def is_video(path):
    """Whether --predict takes this path for a video (by its extension)."""
    return Path(path).suffix.lower() in EXTENSIONS


def outputs(prefix):
    """The overlay video and the ids folder of a clip."""
    return [prefix.with_name(f"{prefix.name}_{end}") for end in ["overlay.mp4", "ids"]]


def read_clips(inputs, classes):
    """(frames, add) per readable video of cli.claim_predictions' inputs: add(overlay,
    ids) takes a frame's pictures; the outputs go into place when the frames end."""
    for clip, prefix in [(path, pre) for path, pre in inputs if is_video(path)]:
        try:
            capture, first = open_clip(clip)
        except UserError as error:  # as for photos: the other inputs go on
            inputs.skip(clip, error)
            continue
        video, ids = outputs(prefix)  # the temporary .mp4 keeps its extension
        with (
            runs.atomic_path(video) as tmp_video,
            runs.atomic_path(ids, folder=True) as tmp_ids,
        ):
            size = first.shape[1::-1]  # width, height
            writer = ClipWriter(tmp_video, tmp_ids, capture, size, classes)
            try:
                yield frames(capture, first), writer.add
            finally:
                capture.release()
                writer.writer.release()  # finishes the video file
        writer.report(prefix.name)


def open_clip(path):
    """An OpenCV capture of a video, and its first frame (BGR)."""
    capture = cv2.VideoCapture(str(path))
    found, first = capture.read() if capture.isOpened() else (False, None)
    if not found:
        capture.release()
        raise UserError(
            f"video {path} cannot be read (OpenCV finds no frame in it); convert it "
            "to MP4 or remove it"
        )
    height, width = first.shape[:2]
    if min(width, height) < 2:  # MPEG-4 would round a side of 1 down to nothing
        capture.release()
        raise UserError(
            f"video {path} is {width}x{height} pixels; an overlay video needs 2x2 or "
            "more: remove it"
        )
    return capture, first


def frames(capture, frame):
    """The frames of a capture from its first, already read, on, as RGB arrays."""
    found = True
    while found:
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        found, frame = capture.read()


class ClipWriter:
    """A clip's overlay video and ids PNGs, written to these (temporary) paths."""

    def __init__(self, video, ids, capture, size, classes, every=10.0):
        self.ids, self.classes, self.every = ids, classes, every
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0  # some formats do not say
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self.writer = cv2.VideoWriter(str(video), fourcc, fps, size)
        self.total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.done, self.changed, self.previous = 0, 0.0, None
        self.start = self.last = time.monotonic()

    def add(self, overlay, ids):
        """Write one frame's overlay and ids; count the pixels that changed class."""
        self.writer.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        ids_png(ids, self.classes).save(self.ids / f"{self.done:06d}.png")
        if self.previous is not None:
            self.changed += (ids != self.previous).mean()
        self.previous, self.done = ids, self.done + 1
        if time.monotonic() >= self.last + self.every:
            self.last = time.monotonic()
            print(f"  {self.done}/{self.total} frames, {self.rate():.1f} frames/s")

    def rate(self):
        """Frames predicted per second so far."""
        return self.done / max(time.monotonic() - self.start, 1e-9)

    def report(self, name):
        """Say how fast and how steady the clip was."""
        flicker = self.changed / max(self.done - 1, 1)  # mean over frame pairs
        print(
            f"{files.printable(name)}: {self.done} frames at {self.rate():.1f} "
            f"frames/s; flicker {flicker:.2%} (pixels whose class changes from one "
            "frame to the next)"
        )
