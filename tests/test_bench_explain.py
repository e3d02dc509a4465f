"""``cnnlab bench explain``: a smoke run on a narrow ResNet-9 (no timing asserted; the passes are counted)."""

import json

from cnnlab.cli import main


def test_bench_explain_writes_json_and_counts_passes(tmp_path, capsys):
    code = main(["bench", "explain", "--images", "2", "--slow-images", "1", "--repeats", "1", "--width", "4",
                 "--methods", "gradcam,saliency", "occlusion", "occlusion_one_at_a_time",
                 "--out-dir", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    payload = json.loads(out)
    (written,) = tmp_path.glob("explain-*.json")
    assert json.loads(written.read_text())["rows"] == payload["rows"]
    rows = {r["case"]: r for r in payload["rows"]}
    assert set(rows) == {"gradcam", "saliency", "occlusion", "occlusion_one_at_a_time"}
    # Grad-CAM: one forward and one backward pass per batch (both images in one batch)
    assert (rows["gradcam"]["forward_passes"], rows["gradcam"]["backward_passes"]) == (1, 1)
    assert payload["conclusions"]["gradcam_passes_per_batch"] == [1.0, 1.0]
    # occlusion 8x8 windows, stride 4 on 32x32: 7 x 7 = 49 positions (+1 unperturbed pass);
    # one at a time means one forward per position and image, batched means far fewer
    assert rows["occlusion_one_at_a_time"]["forward_passes"] == 50
    assert rows["occlusion"]["forward_passes"] < 5
    assert rows["occlusion"]["images_through_model_per_image"] == rows["occlusion_one_at_a_time"][
        "images_through_model_per_image"] == 50
    assert all(r["images_per_second"] > 0 for r in payload["rows"])
    assert payload["conclusions"]["occlusion_batched_speedup"] > 0


def test_bench_explain_bad_case(tmp_path, capsys):
    assert main(["bench", "explain", "--methods", "gradcm", "--out-dir", str(tmp_path)]) == 2
    assert "did you mean 'gradcam'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
