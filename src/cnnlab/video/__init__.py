"""Video: classify or detect in every frame, track objects, count what crosses a line, write the annotated video.

- :mod:`cnnlab.video.io`: probing, background decoding in batches and encoding (PyAV/FFmpeg).
- :mod:`cnnlab.video.models`: a run's classifier/detector (or an ONNX classifier) on a batch of frames.
- :mod:`cnnlab.video.track`: the ByteTrack-style tracker (Kalman + Hungarian, two associations).
- :mod:`cnnlab.video.count`: line crossings and region entries of tracks.
- :mod:`cnnlab.video.pipeline`: :func:`predict_video`, the whole path, one record per processed frame.

Needs the ``video`` extra (``pip install 'cnnlab[video]'``); importing this package imports none of it.
"""

from __future__ import annotations


def predict_video(*args, **kwargs):
    """See :func:`cnnlab.video.pipeline.predict_video` (imported lazily: torch and PyAV load on first use)."""
    from cnnlab.video.pipeline import predict_video as run  # why here: importing this package loads nothing heavy

    return run(*args, **kwargs)
