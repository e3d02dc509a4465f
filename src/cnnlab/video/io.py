"""Reading and writing videos with PyAV (FFmpeg): probing, background decoding in batches, encoding.

A *video* is a file FFmpeg can open (MP4, AVI, MOV, MKV, WebM, ...) or a folder of numbered
frames (``frame_0001.png``, ``2.jpg``, ...: the image files directly inside it, ordered by the
last number in their names). Containers and codecs are PyAV's; cnnlab never parses one itself.

- :func:`probe` reads the header only: size, frame rate, frame count, codec. A frame larger
  than the memory the decoder would hold is refused here, before any pixel is decoded.
- :func:`decode_batches` decodes in a background thread and hands over lists of
  :class:`Frame` (RGB ``(H, W, 3)`` uint8), so decoding overlaps the caller's inference.
  A file that breaks mid-stream (truncated, damaged) ends the stream early: what was
  decoded is kept and :attr:`Decoder.error` says why it stopped.
- :class:`VideoWriter` encodes frames in a background thread into a temporary file beside
  the target, renamed over it only when the last frame is written (``fileio.atomic_path``):
  a failed or interrupted run never leaves a partial video under the final name. The file
  carries a ``comment`` metadata tag "written by cnnlab", so ``--overwrite`` can tell a video cnnlab wrote.

>>> import tempfile, pathlib, numpy as np
>>> path = pathlib.Path(tempfile.mkdtemp()) / "clip.mp4"
>>> with VideoWriter(path, width=32, height=24, rate=25) as out:
...     for i in range(10):
...         out.write(np.full((24, 32, 3), 20 * i, dtype=np.uint8))
>>> info = probe(path)
>>> info.width, info.height, info.rate, info.frames
(32, 24, Fraction(25, 1), 10)
>>> sum(len(batch) for batch in decode_batches(info, batch=4))
10
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.fileio import VIDEO_TAG as CNNLAB_TAG  # the start of the "comment" metadata of every video cnnlab makes
from cnnlab.fileio import atomic_path, video_written_by_cnnlab
from cnnlab.version import __version__

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_FOLDER_RATE = Fraction(25)  # frames/s of a folder of frames unless told
MEMORY_LIMIT = 4 * 2**30  # bytes of decoded frames the pipeline may hold at once
QUEUE_BATCHES = 2  # decoded batches waiting for the consumer
WRITE_QUEUE = 16  # frames waiting for the encoder

# Output extension -> (container format, codec); libx264 takes odd sizes in 4:4:4 only.
ENCODERS = {".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
            ".mkv": ("matroska", "libx264"), ".avi": ("avi", "mpeg4"), ".webm": ("webm", "libvpx")}


def _av():
    try:
        import av
    except ImportError:
        raise CnnlabError("video needs PyAV: pip install 'cnnlab[video]'") from None
    # PyAV's default log level (None) drops FFmpeg's own messages, so the one-line errors stay one line.
    # (Installing a level makes FFmpeg's threads call back into Python: that deadlocked on close here.)
    return av


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


@dataclass
class VideoInfo:
    """What the header says. ``frames`` is None when the container does not say (then counted while decoding)."""

    path: Path
    width: int
    height: int
    rate: Fraction  # frames per second (the stream's average rate)
    frames: int | None
    codec: str
    folder: list[Path] | None = None  # the frame files, for a folder of frames

    def frame_bytes(self) -> int:
        return self.width * self.height * 3


@dataclass
class Frame:
    index: int  # 0-based position in the video
    time: float  # seconds from the start
    rgb: np.ndarray  # (H, W, 3) uint8


def memory_estimate(info: VideoInfo, batch: int) -> int:
    """Bytes of decoded frames held at once: queued batches, the batch in work, and the encoder's queue."""
    return info.frame_bytes() * (batch * (QUEUE_BATCHES + 2) + WRITE_QUEUE)


def check_memory(info: VideoInfo, batch: int, limit: int = MEMORY_LIMIT) -> None:
    """Refuse, before decoding, a video whose frames would not fit in ``limit`` bytes at this batch."""
    need = memory_estimate(info, batch)
    if need > limit:
        raise CnnlabError(f"{info.path} is {info.width}x{info.height}: decoding it in batches of {batch} would hold "
                          f"about {need / 2**30:.1f} GiB of frames (limit {limit / 2**30:.1f} GiB); "
                          "lower --batch or scale the video down first")


def _frame_number(path: Path) -> int | None:
    found = re.findall(r"\d+", path.stem)
    return int(found[-1]) if found else None


def _probe_folder(path: Path, rate: Fraction | None) -> VideoInfo:
    from PIL import Image

    try:
        files = [f for f in path.iterdir() if f.suffix.lower() in FRAME_SUFFIXES and f.is_file()]
    except OSError as exc:
        raise CnnlabError(f"cannot list folder {path}: {exc.strerror or exc}") from None
    numbered = [f for f in files if _frame_number(f) is not None]
    if not numbered:
        raise CnnlabError(f"{path} is a folder with no numbered frames ({'/'.join(FRAME_SUFFIXES)} files with a "
                          "number in their names, e.g. frame_0001.png)")
    numbered.sort(key=lambda f: (_frame_number(f), f.name))
    try:
        with Image.open(numbered[0]) as img:  # the header only: the size
            width, height = img.size
    except Exception as exc:  # Pillow raises many types for a broken file
        raise CnnlabError(f"cannot read frame {numbered[0]}: {_reason(exc)}") from None
    return VideoInfo(path, width, height, rate or DEFAULT_FOLDER_RATE, len(numbered), "images", numbered)


def probe(path: str | os.PathLike, rate: float | None = None) -> VideoInfo:
    """The video's size, frame rate, frame count and codec, from its header (no frame decoded).

    ``rate`` (frames/s) applies to a folder of frames only; a file keeps its own.
    """
    path = Path(path)
    given = None if rate is None else Fraction(rate).limit_denominator(1001)
    if given is not None and not 0 < given <= 1000:
        raise CnnlabError(f"--fps {rate} is out of range; expected frames per second in (0, 1000]")
    if path.is_dir():
        return _probe_folder(path, given)
    if not path.is_file():
        raise CnnlabError(f"video {path} does not exist" if not path.exists()
                          else f"{path} is not a regular file; give a video file or a folder of frames")
    if given is not None:
        raise CnnlabError("--fps applies to a folder of frames; a video file keeps its own frame rate")
    av = _av()
    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.* for every kind of unreadable file
        raise CnnlabError(f"cannot read video {path}: FFmpeg cannot open it as a video ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise CnnlabError(f"{path} has no video stream (it holds: {', '.join(kinds)}); give a video file")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise CnnlabError(f"cannot read video {path}: its video stream has no frame size")
        avg = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not avg or avg <= 0:
            raise CnnlabError(f"cannot read video {path}: its video stream has no frame rate")
        return VideoInfo(path, width, height, Fraction(avg), int(stream.frames) or None,
                         stream.codec_context.name)


# ----------------------------------------------------------------------------- decoding


def _file_frames(info: VideoInfo, decoder: "Decoder") -> Iterator[Frame]:
    av = _av()
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg's own frame threads
        start = None
        index = 0
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else index / float(info.rate)
                start = t if start is None else start
                if (frame.width, frame.height) != (info.width, info.height):
                    decoder.error = (f"frame {index} is {frame.width}x{frame.height}, the video "
                                     f"{info.width}x{info.height}: the size changed mid-stream")
                    return
                if decoder.wants(index, t - start):
                    yield Frame(index, round(t - start, 6), frame.to_ndarray(format="rgb24"))
                elif decoder.past(t - start):
                    return
                index += 1
        except av.error.FFmpegError as exc:  # damaged or truncated mid-stream: keep what was decoded
            decoder.error = f"decoding stopped after {index} frame(s): {_reason(exc)}"


def _folder_frames(info: VideoInfo, decoder: "Decoder") -> Iterator[Frame]:
    from PIL import Image

    for index, path in enumerate(info.folder or []):
        t = index / float(info.rate)
        if decoder.past(t):
            return
        if not decoder.wants(index, t):
            continue
        try:
            with Image.open(path) as img:
                if img.size != (info.width, info.height):
                    decoder.error = (f"frame {path.name} is {img.size[0]}x{img.size[1]}, the first frame "
                                     f"{info.width}x{info.height}: every frame must have one size")
                    return
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except Exception as exc:  # Pillow raises many types for a broken file
            decoder.error = f"cannot read frame {path.name}: {_reason(exc)}"
            return
        yield Frame(index, round(t, 6), rgb)


@dataclass
class Decoder:
    """Which frames to decode: ``start``/``duration`` in seconds, every ``every``-th frame of those.

    After the iteration, ``decoded`` counts the frames handed over and ``error`` says why the
    stream ended early (None when it ended normally).
    """

    info: VideoInfo
    start: float = 0.0
    duration: float | None = None
    every: int = 1
    decoded: int = 0
    error: str | None = None
    _first: int | None = field(default=None, repr=False)

    def past(self, t: float) -> bool:
        return self.duration is not None and t >= self.start + self.duration - 1e-9

    def wants(self, index: int, t: float) -> bool:
        if t < self.start - 1e-9 or self.past(t):
            return False
        self._first = index if self._first is None else self._first
        return (index - self._first) % self.every == 0

    def frames(self) -> Iterator[Frame]:
        source = _folder_frames if self.info.folder is not None else _file_frames
        for frame in source(self.info, self):
            self.decoded += 1
            yield frame


def decode_batches(info: VideoInfo, batch: int = 8, start: float = 0.0, duration: float | None = None,
                   every: int = 1, decoder: Decoder | None = None) -> Iterator[list[Frame]]:
    """Lists of up to ``batch`` frames, decoded in a background thread (``QUEUE_BATCHES`` ahead).

    Pass a :class:`Decoder` to read ``decoded`` and ``error`` afterwards.
    """
    check_memory(info, batch)
    decoder = decoder or Decoder(info, start, duration, every)
    q: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()

    def work() -> None:
        chunk: list[Frame] = []
        try:
            for frame in decoder.frames():
                chunk.append(frame)
                if len(chunk) == batch:
                    if not _put(q, chunk, stop):
                        return
                    chunk = []
            if chunk:
                _put(q, chunk, stop)
        except BaseException as exc:  # handed to the consumer, raised there
            _put(q, exc, stop)
        finally:
            _put(q, None, stop)

    thread = threading.Thread(target=work, name="cnnlab-decode", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless the consumer has gone (then False)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


# ----------------------------------------------------------------------------- encoding


def check_encodable(path: str | os.PathLike) -> tuple[str, str]:
    """(container format, codec) for an output name; an extension the encoder cannot write is an error."""
    suffix = Path(path).suffix.lower()
    if suffix not in ENCODERS:
        raise CnnlabError(f"cannot write video {path}: the extension {suffix or '(none)'} is not one cnnlab encodes; "
                          f"use one of {', '.join(ENCODERS)}")
    return ENCODERS[suffix]


def is_cnnlab_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a video cnnlab wrote (its ``comment`` metadata says so)."""
    return video_written_by_cnnlab(path)


class VideoWriter:
    """Encode RGB frames (H, W, 3) uint8 at ``rate`` frames/s; the file appears only on success.

    Frames are encoded in a background thread (up to ``WRITE_QUEUE`` waiting). An even size
    is written as H.264 4:2:0 (what every player reads), an odd one as 4:4:4 (x264 needs even
    sides for 4:2:0). ``.avi`` is MPEG-4 part 2, ``.webm`` VP8.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, rate) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.rate = Fraction(rate).limit_denominator(1_000_000)
        self.format, self.codec = check_encodable(self.path)
        if (self.width % 2 or self.height % 2) and self.codec != "libx264":
            raise CnnlabError(f"cannot write a {self.width}x{self.height} video as {self.path.suffix}: its codec needs "
                              "even sides; write .mp4, .mov or .mkv")
        self.written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE)
        self._error: BaseException | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "VideoWriter":
        av = _av()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._container = av.open(str(tmp), "w", format=self.format)
        self._container.metadata["comment"] = f"{CNNLAB_TAG} {__version__}"  # every container keeps "comment"
        stream = self._container.add_stream(self.codec, rate=self.rate)
        stream.width, stream.height = self.width, self.height
        odd = self.width % 2 or self.height % 2
        stream.pix_fmt = "yuv444p" if (odd and self.codec == "libx264") else "yuv420p"
        if self.codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "18"}
        self._stream = stream
        self._thread = threading.Thread(target=self._work, name="cnnlab-encode", daemon=True)
        self._thread.start()
        return self

    def _work(self) -> None:
        av = _av()
        try:
            while (rgb := self._queue.get()) is not None:
                if callable(rgb):  # a picture to draw first (cnnlab.video.pipeline.Picture), drawn here
                    rgb = self._checked(rgb())
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = self.written
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
                self.written += 1
            for packet in self._stream.encode():  # flush
                self._container.mux(packet)
        except BaseException as exc:  # raised in the caller's thread
            self._error = exc
            while self._queue.get() is not None:  # drain, so the producer never blocks
                pass

    def write(self, rgb) -> None:
        """Queue one (H, W, 3) uint8 frame of the writer's size, or a callable that returns one
        (called in the encoding thread: drawing there overlaps the caller's work)."""
        if self._error is not None:
            raise CnnlabError(f"cannot write video {self.path}: {_reason(self._error)}")
        self._queue.put(rgb if callable(rgb) else self._checked(rgb))

    def _checked(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise CnnlabError(f"expected a uint8 frame of shape {(self.height, self.width, 3)}, got "
                              f"{rgb.dtype} {rgb.shape}")
        return np.ascontiguousarray(rgb)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            self._container.close()
        except Exception as err:  # noqa: BLE001 -- a failure to finish the file
            self._error = self._error or err
        failed = exc_type is not None or self._error is not None
        # atomic_path renames on a clean exit and removes the temporary file otherwise.
        self._stack.__exit__(*(exc_type, exc, tb) if exc_type else
                             (RuntimeError, RuntimeError("encoding failed"), None) if failed else (None, None, None))
        if self._error is not None and exc_type is None:
            raise CnnlabError(f"cannot write video {self.path}: {_reason(self._error)}")
