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

from deeplab_support import UserError, runs
from deeplab_support.classes import ids_png

EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


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
        writer = ClipWriter(prefix, capture, classes)
        try:
            yield frames(capture, first), writer.add
            writer.finish()
        finally:
            capture.release()
            writer.discard()


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
    """A clip's overlay video and ids PNGs, written beside their final names."""

    def __init__(self, prefix, capture, classes, every=10.0):
        self.video, self.ids = outputs(prefix)
        self.fps = capture.get(cv2.CAP_PROP_FPS) or 25.0  # some formats do not say
        self.total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.classes, self.every, self.writer = classes, every, None
        self.tmp_video = runs.temp_name(self.video)  # ends in .mp4, as OpenCV wants
        self.tmp_ids = runs.temp_name(self.ids, folder=True)
        self.done, self.changed, self.previous = 0, 0.0, None
        self.start = self.last = time.monotonic()

    def add(self, overlay, ids):
        """Write one frame's overlay and ids; count the pixels that changed class."""
        if self.writer is None:
            size = (overlay.shape[1], overlay.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.writer = cv2.VideoWriter(str(self.tmp_video), fourcc, self.fps, size)
        self.writer.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        ids_png(ids, self.classes).save(self.tmp_ids / f"{self.done:06d}.png")
        if self.previous is not None:
            self.changed += (ids != self.previous).mean()
        self.previous, self.done = ids, self.done + 1
        if time.monotonic() >= self.last + self.every:
            self.last = time.monotonic()
            print(f"  {self.done}/{self.total} frames, {self.rate():.1f} frames/s")

    def rate(self):
        """Frames predicted per second so far."""
        return self.done / max(time.monotonic() - self.start, 1e-9)

    def finish(self):
        """Move the outputs into place; say how fast and how steady the clip was."""
        if self.writer is not None:
            self.writer.release()
        os.replace(self.tmp_video, self.video)
        runs.remove(self.ids)  # an earlier one of ours, as claimed
        os.replace(self.tmp_ids, self.ids)
        flicker = self.changed / max(self.done - 1, 1)  # mean over frame pairs
        print(
            f"{self.video.name[: -len('_overlay.mp4')]}: {self.done} frames at "
            f"{self.rate():.1f} frames/s; flicker {flicker:.2%} (pixels whose "
            "class changes from one frame to the next)"
        )

    def discard(self):
        """Delete what an unfinished clip left behind."""
        if self.writer is not None:
            self.writer.release()
        runs.remove(self.tmp_video)
        runs.remove(self.tmp_ids)
