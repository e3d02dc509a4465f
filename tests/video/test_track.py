"""The tracker on hand-made box sequences: the documented id rules, one scenario each."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.video.track import KalmanBox, Tracker, TrackerConfig, iou_matrix


def box(x, y, w=20, h=20):
    return [x, y, x + w, y + h]


def run(tracker, frames):
    """frames: per frame a list of (box, score, class) -> per frame {detection index: track id}."""
    out = []
    for dets in frames:
        boxes = np.array([d[0] for d in dets], dtype=float).reshape(-1, 4)
        scores = np.array([d[1] for d in dets], dtype=float)
        tracks = tracker.update(boxes, scores, [d[2] for d in dets])
        out.append({t.detection: t.track_id for t in tracks})
    return out


def test_iou_matrix_matches_hand_computed_values():
    a = np.array([[0, 0, 10, 10.], [0, 0, 4, 4.]])
    b = np.array([[5, 0, 15, 10.], [0, 0, 10, 10.], [20, 20, 30, 30.]])
    expected = [[50 / 150, 1.0, 0.0], [0.0, 16 / 100, 0.0]]
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_a_steady_object_gets_id_1_from_its_second_frame_and_keeps_it():
    ids = run(Tracker(), [[(box(10 + 3 * i, 10), 0.9, "a")] for i in range(10)])
    assert ids[0] == {}  # tentative on its first frame (min_hits=2)
    assert all(frame == {0: 1} for frame in ids[1:])


def test_two_objects_crossing_keep_their_ids():
    # A moves right, B moves left, 12 px apart vertically: their boxes overlap for several frames.
    frames = []
    for i in range(20):
        a, b = box(5 + 5 * i, 20), box(100 - 5 * i, 32)
        frames.append([(b, 0.9, "b"), (a, 0.9, "a")] if i % 2 else [(a, 0.9, "a"), (b, 0.9, "b")])
    ids = run(Tracker(), frames)
    id_a = ids[1][1]  # frame 1: A is the second detection
    id_b = ids[1][0]
    assert {id_a, id_b} == {1, 2}
    for i, frame in enumerate(ids[1:], 1):
        a_index, b_index = (1, 0) if i % 2 else (0, 1)
        assert frame == {a_index: id_a, b_index: id_b}, f"frame {i}"


def test_an_occlusion_of_a_few_frames_keeps_the_id():
    frames = [[(box(10 + 4 * i, 40), 0.9, "a")] if not 6 <= i < 11 else [] for i in range(16)]
    ids = run(Tracker(TrackerConfig(max_age=8)), frames)
    assert ids[5] == {0: 1} and ids[6:11] == [{}] * 5
    assert ids[11:] == [{0: 1}] * 5  # reappears where its velocity says: same id


def test_an_object_leaving_and_a_new_one_entering_get_different_ids():
    cfg = TrackerConfig(max_age=3)
    leaving = [[(box(10 + 4 * i, 40), 0.9, "a")] for i in range(5)]
    gap = [[] for _ in range(4)]  # more than max_age processed frames without it: removed
    entering = [[(box(30, 40), 0.9, "a")] for _ in range(3)]  # where the old one would not be, and later
    ids = run(Tracker(cfg), leaving + gap + entering)
    assert ids[4] == {0: 1}
    assert ids[-1] == {0: 2}
    # while one object stays, a newcomer gets the next id and the first keeps its own
    stay = [[(box(10, 10), 0.9, "a")] + ([(box(80, 80), 0.9, "b")] if i >= 3 else []) for i in range(6)]
    ids = run(Tracker(), stay)
    assert ids[5] == {0: 1, 1: 2}


def test_low_score_detections_extend_tracks_but_never_start_one():
    frames = [[(box(10 + 2 * i, 10), 0.9 if i < 4 or i >= 8 else 0.2, "a")] for i in range(12)]
    ids = run(Tracker(), frames)
    assert all(f == {0: 1} for f in ids[1:])  # the weak frames 4-7 stay on track 1 (second association)
    lonely = run(Tracker(), [[(box(50, 50), 0.3, "a")] for _ in range(5)])
    assert lonely == [{}] * 5  # a low-score object alone never becomes a track
    ignored = run(Tracker(), [[(box(50, 50), 0.05, "a")] for _ in range(5)])  # below low_score
    assert ignored == [{}] * 5


def test_a_one_frame_false_positive_never_gets_an_id():
    frames = [[(box(10, 10), 0.9, "a")] + ([(box(70, 70), 0.95, "b")] if i == 2 else []) for i in range(6)]
    tracker = Tracker()
    ids = run(tracker, frames)
    assert ids[2] == {0: 1} and tracker.next_id == 2  # id 2 was never handed out


def test_the_class_is_the_majority_of_the_matched_detections():
    tracker = Tracker()
    classes = ["7", "7", "1", "7", "1"]
    for i, c in enumerate(classes):
        tracks = tracker.update(np.array([box(10 + i, 10)], float), np.array([0.9]), [c])
    assert tracks[0].cls == "7"


def test_the_kalman_filter_follows_constant_velocity():
    kf = KalmanBox(np.array(box(0, 0), float))
    for i in range(1, 30):
        kf.predict()
        kf.update(np.array(box(3 * i, 2 * i), float))
    np.testing.assert_allclose(kf.predict(), box(90, 60), atol=0.5)
    np.testing.assert_allclose(kf.x[4:6], [3, 2], atol=0.1)


def test_bad_tracker_settings_are_refused():
    for cfg in (TrackerConfig(low_score=0.6, high_score=0.5), TrackerConfig(match_iou=0), TrackerConfig(min_hits=0)):
        with pytest.raises(CnnlabError):
            Tracker(cfg)


def test_a_class_penalty_keeps_a_track_on_its_own_class_when_two_boxes_overlap_it():
    # a "7" tracked for 4 frames; then a "1" overlaps its prediction by IoU 0.82 and a "7" by IoU 0.67
    steady = [[(box(10, 10), 0.9, "7")]] * 4
    crowd = [[(box(12, 10), 0.9, "1"), (box(14, 10), 0.9, "7")]]
    plain = run(Tracker(TrackerConfig(dedupe_iou=0.95)), steady + crowd)
    aware = run(Tracker(TrackerConfig(dedupe_iou=0.95, class_penalty=0.3)), steady + crowd)
    assert plain[-1] == {0: 1}  # IoU alone: the track jumps to the "1"
    assert aware[-1] == {1: 1}  # 1 - 0.67 < 1 - 0.82 + 0.3: it stays on the "7"


def test_a_buffered_association_takes_back_a_box_that_jumped_clear_of_its_prediction():
    # a still 10 x 10 box; then it reappears 2 px to the right of where it was: IoU 0 with the prediction
    frames = [[(box(0, 0, 10, 10), 0.9, "3")]] * 4 + [[(box(12, 0, 10, 10), 0.9, "3")]] * 2
    plain = run(Tracker(TrackerConfig(buffer=0)), frames)
    grown = run(Tracker(TrackerConfig(buffer=0.5)), frames)  # boxes grown by 5 px a side: IoU 0.25 >= 0.2
    assert plain[-1] == {0: 2}  # a new id
    assert grown[-1] == {0: 1}  # the same id
    with pytest.raises(CnnlabError, match="buffer"):
        Tracker(TrackerConfig(buffer=-1))


def test_birth_iou_keeps_a_second_box_on_a_tracked_object_from_becoming_a_track():
    # a tracked 20 x 20 box; from frame 4 a second, larger box around it (IoU 0.44, below dedupe_iou)
    steady = [[(box(10, 10), 0.9, "4")]] * 4
    doubled = [[(box(10, 10), 0.9, "4"), (box(10, 10, 30, 30), 0.6, "4")]] * 3
    plain = run(Tracker(TrackerConfig(birth_iou=1.0, dedupe_iou=0.7)), steady + doubled)
    guarded = run(Tracker(TrackerConfig(birth_iou=0.3, dedupe_iou=0.7)), steady + doubled)
    assert plain[-1] == {0: 1, 1: 2}  # the second box became track 2
    assert guarded[-1] == {0: 1}  # overlaps track 1 by IoU 0.44 >= 0.3: never born
    # a box clear of every track is still born
    apart = run(Tracker(TrackerConfig(birth_iou=0.3, dedupe_iou=0.7)), steady + [[(box(10, 10), 0.9, "4"), (box(60, 60), 0.9, "1")]] * 2)
    assert apart[-1] == {0: 1, 1: 2}


def test_partial_area_coasts_on_the_motion_while_the_object_is_half_hidden():
    # a 20 x 20 box moving +2 px a frame into a still occluder whose left side is at x = 44: from
    # frame 13 on the visible box is [x, 44], so its centre moves 1 px a frame while the object moves 2
    frames = [[(box(2 * i, 10, min(20, 44 - 2 * i)), 0.9, "7")] for i in range(20)]
    guarded, plain = Tracker(TrackerConfig(partial_area=0.7)), Tracker(TrackerConfig(partial_area=0))
    run(guarded, frames)
    run(plain, frames)
    speed = {name: t.tracks[0].kf.x[4] for name, t in (("guarded", guarded), ("plain", plain))}
    assert speed["plain"] < 1.5  # the shrinking box dragged the estimate towards 1 px a frame
    assert speed["guarded"] > 1.6  # once the box is 0.7x its usual area, matches keep the track alive only
    assert guarded.tracks[0].confirmed and guarded.tracks[0].misses == 0
    with pytest.raises(CnnlabError, match="partial_area"):
        Tracker(TrackerConfig(partial_area=1.0))


def test_tracker_options_from_the_command_line_are_checked():
    from cnnlab.video.track import parse_tracker_options

    cfg = parse_tracker_options(["high_score=0.6", "min_hits=3", "birth_iou=0.3"])
    assert (cfg.high_score, cfg.min_hits, cfg.birth_iou) == (0.6, 3, 0.3)
    for bad, match in ((["min_hit=3"], "did you mean 'min_hits'"), (["min_hits=2.5"], "must be an integer"),
                       (["high_score"], "KEY=VALUE"), (["buffer=nan"], "finite"), (["low_score=0.9"], "low_score"),
                       (["buffer=1", "buffer=2"], "twice")):
        with pytest.raises(CnnlabError, match=match):
            parse_tracker_options(bad)


def test_fused_scores_let_an_object_split_over_classes_reach_the_thresholds():
    # one object, three overlapping boxes of three classes at 0.25 / 0.2 / 0.15: none reaches high_score 0.4
    split = [[(box(10 + i, 10), 0.25, "6"), (box(10 + i, 10, 20, 21), 0.2, "5"), (box(11 + i, 10), 0.15, "1")]
             for i in range(4)]
    assert run(Tracker(TrackerConfig(fuse_scores=0)), split)[-1] == {}  # never a track
    fused = run(Tracker(TrackerConfig(fuse_scores=1)), split)  # 0.6 for the "6" box: a track from frame 2 on
    assert fused[0] == {} and all(frame == {0: 1} for frame in fused[1:])
    with pytest.raises(CnnlabError, match="fuse_scores"):
        Tracker(TrackerConfig(fuse_scores=2))
