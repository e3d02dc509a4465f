"""Decoding and encoding with PyAV: real shipped clips, round trips, frame folders, broken files."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from cnnlab.errors import CnnlabError
from cnnlab.video.io import (VideoWriter, check_encodable, check_memory, decode_batches, Decoder, is_cnnlab_video,
                             probe)
from tests.video.conftest import moving_squares, shipped_clip, write_audio_only, write_video


def pyav_reference(path):
    """Frame count and size as PyAV itself reports them, decoding every frame (the independent reference)."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return len(frames), frames[0].width, frames[0].height, c.streams.video[0].average_rate


@pytest.mark.parametrize("name", ["bikes.mp4", "carphone_pristine.mp4"])
def test_a_real_shipped_mp4_decodes_to_pyavs_frame_count_and_size(name):
    path = shipped_clip(name)
    count, w, h, rate = pyav_reference(path)
    info = probe(path)
    assert (info.width, info.height, info.rate) == (w, h, Fraction(rate))
    decoder = Decoder(info)
    batches = list(decode_batches(info, batch=16, decoder=decoder))
    frames = [f for b in batches for f in b]
    assert len(frames) == count == decoder.decoded and decoder.error is None
    assert all(f.rgb.shape == (h, w, 3) and f.rgb.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(count))
    assert all(len(b) == 16 for b in batches[:-1])
    assert frames[1].time == pytest.approx(1 / float(rate), abs=1e-3)


def test_start_duration_and_every_select_frames(bikes):
    info = probe(bikes)  # 25 fps
    frames = [f for b in decode_batches(info, batch=4, start=2.0, duration=1.0, every=5) for f in b]
    assert [f.index for f in frames] == [50, 55, 60, 65, 70]
    assert frames[0].time == pytest.approx(2.0)


def test_an_encoded_video_keeps_frame_count_size_and_rate_and_decodes_again(tmp_path, bikes):
    info = probe(bikes)
    source = [f.rgb for b in decode_batches(info, batch=8, duration=1.0) for f in b]  # 25 real frames
    out = tmp_path / "copy.mp4"
    write_video(out, source, rate=info.rate)
    count, w, h, rate = pyav_reference(out)
    assert (count, w, h, Fraction(rate)) == (len(source), info.width, info.height, info.rate)
    decoded = [f.rgb for b in decode_batches(probe(out), batch=8) for f in b]
    assert len(decoded) == len(source)
    err = np.abs(decoded[10].astype(int) - source[10].astype(int)).mean()
    assert err < 6  # lossy (crf 18), but the same picture
    assert is_cnnlab_video(out) and not is_cnnlab_video(bikes)


@pytest.mark.parametrize("suffix,rate", [(".mkv", Fraction(30000, 1001)), (".avi", Fraction(25)),
                                         (".webm", Fraction(12)), (".mov", Fraction(24))])
def test_every_container_round_trips(tmp_path, suffix, rate):
    frames = moving_squares(12)
    out = write_video(tmp_path / f"v{suffix}", frames, rate=rate)
    count, w, h, got = pyav_reference(out)
    assert (count, w, h) == (12, 64, 48) and abs(float(got) - float(rate)) < 1e-3


def test_odd_sizes_like_1x2000_round_trip(tmp_path):
    frames = [np.full((2000, 1, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    out = write_video(tmp_path / "thin.mp4", frames)
    assert pyav_reference(out)[:3] == (5, 1, 2000)
    with pytest.raises(CnnlabError, match="even sides"):
        write_video(tmp_path / "thin.avi", frames)
    assert not list(tmp_path.glob("*.avi")) and not list(tmp_path.glob(".thin*"))


def test_a_folder_of_numbered_frames_is_a_video(tmp_path):
    for i, f in enumerate(moving_squares(11)):
        Image.fromarray(f).save(tmp_path / f"frame_{i + 1}.png")  # 1..11: numeric order, not 1, 10, 11, 2
    (tmp_path / "notes.txt").write_text("not a frame")
    info = probe(tmp_path, rate=10)
    assert (info.frames, info.width, info.height, info.rate) == (11, 64, 48, 10)
    frames = [f for b in decode_batches(info, batch=4) for f in b]
    assert [f.time for f in frames][:3] == [0.0, 0.1, 0.2]
    np.testing.assert_array_equal(frames[9].rgb, moving_squares(11)[9])
    with pytest.raises(CnnlabError, match="no numbered frames"):
        probe(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)


def test_a_truncated_file_keeps_what_decodes(tmp_path):
    full = write_video(tmp_path / "full.mkv", moving_squares(60))
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    decoder = Decoder(probe(cut))
    frames = [f for b in decode_batches(decoder.info, batch=8, decoder=decoder) for f in b]
    assert 0 < len(frames) < 60 and decoder.decoded == len(frames)


def test_not_a_video_and_no_video_stream_are_one_line_errors(tmp_path):
    bad = tmp_path / "fake.mp4"
    bad.write_text("hello, not a video\n")
    with pytest.raises(CnnlabError, match="FFmpeg cannot open it"):
        probe(bad)
    audio = write_audio_only(tmp_path / "tone.wav")
    with pytest.raises(CnnlabError, match="no video stream .*audio"):
        probe(audio)
    with pytest.raises(CnnlabError, match="does not exist"):
        probe(tmp_path / "missing.mp4")


def test_a_huge_resolution_is_refused_with_an_estimate_before_decoding(tmp_path):
    Image.new("1", (8000, 8000)).save(tmp_path / "0001.png")  # a small file claiming 64 M pixels
    info = probe(tmp_path)
    with pytest.raises(CnnlabError, match=r"8000x8000: .* about \d+\.\d GiB .*lower --batch"):
        check_memory(info, batch=8)
    check_memory(probe(shipped_clip("bikes.mp4")), batch=8)  # an ordinary video passes


def test_an_unknown_extension_is_refused_and_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(CnnlabError, match="extension .gif"):
        check_encodable(tmp_path / "out.gif")
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(target, 64, 48, 25) as w:
            for f in moving_squares(5):
                w.write(f)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file
    with pytest.raises(CnnlabError, match="expected a uint8 frame"):
        with VideoWriter(target, 64, 48, 25) as w:
            w.write(np.zeros((10, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_a_variable_frame_rate_keeps_each_frames_own_time(tmp_path):
    path = tmp_path / "vfr.mkv"
    stamps_ms = [0, 40, 80, 200, 240, 400]  # gaps of 40, 120 and 160 ms
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for ms, rgb in zip(stamps_ms, moving_squares(6, 32, 32)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    frames = [f for b in decode_batches(probe(path), batch=4) for f in b]
    assert [round(f.time * 1000) for f in frames] == stamps_ms
    assert [f.index for f in frames] == list(range(6))
