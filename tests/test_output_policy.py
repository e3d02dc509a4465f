"""The one output policy, over every command that writes (issue 21).

One world per module: a trained run, a marked output of every directory kind, marked and unmarked
files, a user's folder. Each command is then pointed with ``--out ... --overwrite`` at every output
it must not replace (another kind, its own input, a run's own file, a user's file); each refusal
must be one ``cnnlab: error:`` line, exit 2, and the whole world byte-for-byte unchanged. A second
table checks the same without ``--overwrite`` against an output of the command's own kind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.fileio import html_mark, png_metadata
from cnnlab.rundir import COMPOSITE_KINDS, KINDS, MARKER, check_out_dir, check_out_file, open_run_dir
from tests.cli.test_cli import FAST
from tests.conftest import write_folder

DIR_KINDS = ("train", "scratch-train", "sweep", "ablation", "cv", "ensemble", "explain", "features", "scenes",
             "predict", "lr-find")
TINY = ["data.image_size=16", "model.blocks=2", "model.filters=4", "train.epochs=1", "train.plots=false",
        "data.batch_size=8"]


def _png(path: Path, kind: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    fig.savefig(path, format="png", **({"metadata": png_metadata(kind)} if kind else {}))
    plt.close(fig)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Everything a command could be pointed at; built once (one real training run)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("outputs")
    images = write_folder(root / "images", per_class=6, size=16)
    cache = root / "cache"
    (root / "tiny.yaml").write_text(f"name: tiny\ndata: {{name: folder, root: {images}, image_size: 16, "
                                    f"batch_size: 8, val_fraction: 0.25, cache_dir: {cache}}}\n"
                                    "model: {name: convnet, blocks: 2, filters: 4, dense: 8}\n"
                                    "train: {epochs: 1, plots: false}\n")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(root / "tiny.yaml"), "--out", str(root / "run"), "--quiet"]) == 0
    for kind in DIR_KINDS:
        with open_run_dir(root / f"out-{kind}", kind=kind) as d:
            (d / "content.txt").write_text(f"a {kind} output\n")
    # a run that belongs to a sweep, a sweep holding its own spec, a run holding its own config
    with open_run_dir(root / "out-sweep" / "trials" / "0000", kind="train") as d:
        (d / "config.yaml").write_text("name: trial\n")
    (root / "out-sweep" / "spec.yaml").write_text(f"name: s\nbase: {root / 'tiny.yaml'}\ntrials: 1\n"
                                                  "space: {model.dense: [4, 8]}\n")
    shutil.copy(root / "out-sweep" / "spec.yaml", root / "sweep.yaml")
    shutil.copy(root / "tiny.yaml", root / "out-train" / "config.yaml")
    # an explanation folder's own figure, marked files of each file kind, a user's files
    _png(root / "out-explain" / "figure-0.png", "explain")
    _png(root / "explain.png", "explain")
    _png(root / "preview.png", "preview")
    _png(root / "mine.png", None)
    (root / "report.html").write_text(f"<html><head>{html_mark('report')}</head></html>\n")
    (root / "mine.html").write_text("<html>my page</html>\n")
    (root / "mine.onnx").write_bytes(b"not a model of cnnlab's")
    (root / "notes.txt").write_text("irreplaceable\n")
    (root / "mine").mkdir()
    (root / "mine" / "thesis.tex").write_text("years of work\n")
    return root


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if "cache" not in p.parts}


def refused(world, capsys, argv, *needles):
    before = snapshot(world)
    code = main([str(a).replace("W/", f"{world}/") for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("cnnlab: error:") and err.count("\n") == 1, (argv, code, err)
    for needle in needles:
        assert needle in err, err
    assert snapshot(world) == before, f"{argv} changed the world"


# command -> (argv before --out, the kind it writes, the victims it must refuse with --overwrite)
TRAIN = ["train", "W/tiny.yaml", *TINY, "--quiet"]
COMMANDS = {
    "train": (TRAIN, "train"),
    "scratch train": (["scratch", "train", "mnist", "--limit", "8"], "scratch-train"),
    "sweep": (["sweep", "W/sweep.yaml", "--trials", "1", "--quiet"], "sweep"),
    "ablate": (["ablate", "W/tiny.yaml", "--quiet"], "ablation"),
    "cv": (["cv", "W/tiny.yaml", "--folds", "2", "--quiet"], "cv"),
    "ensemble --bagging": (["ensemble", "--bagging", "2", "W/tiny.yaml", "--quiet"], "ensemble"),
    "ensemble --boost": (["ensemble", "--boost", "2", "W/tiny.yaml", "--quiet"], "ensemble"),
    "lr-find": (["lr-find", "W/tiny.yaml", "--steps", "5"], "lr-find"),
    "explain maps": (["explain", "W/run", "--index", "0", "--methods", "gradcam"], "explain"),
    "features": (["features", "W/run", "--data", "W/tiny.yaml"], "features"),
    "data make-scenes": (["data", "make-scenes", "mnist", "--train", "2", "--test", "2"], "scenes"),
}
FILE_COMMANDS = {
    "explain filters": (["explain", "filters", "W/run"], "explain", ".png"),
    "explain predictions": (["explain", "predictions", "W/run", "--rows", "1", "--cols", "1"], "explain", ".png"),
    "report": (["report", "W/run", "--explain", "0"], "report", ".html"),
    "export onnx": (["export", "W/run", "--parity-images", "0"], "export", ".onnx"),
    "export torchscript": (["export", "W/run", "--format", "torchscript", "--parity-images", "0"], "export", ".pt"),
    "data preview": (["data", "preview", "W/tiny.yaml", "--count", "1"], "preview", ".png"),
}


def dir_victims(kind: str) -> list[tuple[str, str]]:
    """(path, expected words) of every existing directory a ``kind`` command must not replace."""
    out = [(f"W/out-{other}", "not") for other in DIR_KINDS if other != kind]
    out += [("W/mine", "not a cnnlab run directory"), ("W/notes.txt", "it is a file")]
    if kind != "train":  # the run explain and features read is their input; for the others another kind
        out.append(("W/run", "input of this command" if kind in ("explain", "features") else "it is a training run"))
    else:
        out.append(("W/out-sweep/trials/0000", "part of a sweep"))
    return out


CASES = [pytest.param(argv, kind, victim, words, id=f"{name}->{victim[2:]}")
         for name, (argv, kind) in COMMANDS.items() for victim, words in dir_victims(kind)]


@pytest.mark.parametrize("argv, kind, victim, words", CASES)
def test_overwrite_never_replaces_another_kind_of_directory(world, capsys, argv, kind, victim, words):
    refused(world, capsys, [*argv, "--out", victim, "--overwrite"], words)


@pytest.mark.parametrize("argv, victim", [
    (["train", "W/out-train/config.yaml", *TINY, "--quiet"], "W/out-train"),  # a run's config, retrained onto it
    (["sweep", "W/out-sweep/spec.yaml", "--trials", "1", "--quiet"], "W/out-sweep"),  # a sweep's spec inside it
    (["explain", "W/run", "--index", "0"], "W/run"),  # the run it explains
    (["features", "W/run", "--data", "W/tiny.yaml"], "W/run"),  # the backbone it reads
    (["train", "W/tiny.yaml", *TINY, "data.root=W/out-train", "--quiet"], "W/out-train"),  # its own data folder
], ids=["train-own-config", "sweep-own-spec", "explain-own-run", "features-own-backbone", "train-own-data"])
def test_overwrite_never_replaces_the_commands_own_input(world, capsys, argv, victim):
    refused(world, capsys, [*argv, "--out", victim, "--overwrite"], "input of this command")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_without_overwrite_an_output_of_the_same_kind_stays(world, capsys, name):
    argv, kind = COMMANDS[name]
    refused(world, capsys, [*argv, "--out", f"W/out-{kind}"], "already exists; pass --overwrite")


def file_victims(kind: str, suffix: str) -> list[tuple[str, str]]:
    """(path, expected words) of every existing file a ``kind`` command writing ``suffix`` must not replace."""
    wrong_kind = {".png": "W/preview.png" if kind != "preview" else "W/explain.png",
                  ".html": None, ".onnx": None, ".pt": None}[suffix]
    out = [("W/notes.txt", f"must name a {suffix}" if suffix not in (".html", ".onnx") else "must name an"),
           ("W/run/config.yaml", "must name"),
           ("W/mine", "is a folder" if kind == "preview" else "must name")]
    out += [(p, "carries no cnnlab mark") for p in {".png": ["W/mine.png", "W/run/curves.png"],
                                                      ".html": ["W/mine.html"], ".onnx": ["W/mine.onnx"],
                                                      ".pt": ["W/run/final.pt", "W/run/best.pt"]}[suffix]]
    if wrong_kind:
        out.append((wrong_kind, "it is a"))
    if kind == "explain":
        out.append(("W/out-explain/figure-0.png", "belongs to an explanation"))
    return out


FILE_CASES = [pytest.param(argv, victim, words, id=f"{name}->{victim[2:]}")
              for name, (argv, kind, suffix) in FILE_COMMANDS.items() for victim, words in file_victims(kind, suffix)]


@pytest.mark.parametrize("argv, victim, words", FILE_CASES)
def test_overwrite_never_replaces_a_file_cnnlab_did_not_write_as_that_kind(world, capsys, argv, victim, words):
    if victim.endswith("curves.png") and not (world / "run" / "curves.png").exists():
        _png(world / "run" / "curves.png", None)  # train.plots=false: stand in for the run's own plot
    refused(world, capsys, [*argv, "--out", victim, "--overwrite"], words)


@pytest.mark.parametrize("name", list(FILE_COMMANDS))
def test_without_overwrite_an_existing_file_stays(world, capsys, name):
    argv, kind, suffix = FILE_COMMANDS[name]
    existing = {".png": "W/explain.png" if kind == "explain" else "W/preview.png", ".html": "W/report.html",
                ".onnx": "W/mine.onnx", ".pt": "W/run/final.pt"}[suffix]
    refused(world, capsys, [*argv, "--out", existing], "already exists; pass --overwrite")


def test_a_symlink_is_never_written_through(world, capsys, tmp_path):
    link = world / "link.png"
    link.symlink_to(world / "explain.png")
    try:
        refused(world, capsys, ["explain", "filters", "W/run", "--out", "W/link.png", "--overwrite"], "symbolic link")
    finally:
        link.unlink()


# ------------------------------------------------------------------ the same kind is replaced (the helper)


@pytest.mark.parametrize("kind", DIR_KINDS)
def test_overwrite_replaces_an_output_of_the_same_kind(tmp_path, kind):
    with open_run_dir(tmp_path / "out", kind=kind):
        pass
    check_out_dir(tmp_path / "out", True, kind=kind)  # accepted
    with open_run_dir(tmp_path / "out", overwrite=True, kind=kind) as d:
        assert sorted(p.name for p in d.iterdir()) == [MARKER]


def test_every_kind_is_described_and_composites_are_kinds():
    assert set(DIR_KINDS) | {"report", "export", "preview"} <= set(KINDS)
    assert set(COMPOSITE_KINDS) <= set(DIR_KINDS)


def test_a_marker_without_a_kind_is_a_training_run_only_when_it_holds_one(tmp_path):
    """Runs by an older version (a marker with no kind): a training run is still replaced by train."""
    from cnnlab.errors import CnnlabError

    old_run, old_other = tmp_path / "old-run", tmp_path / "old-other"
    for folder in (old_run, old_other):
        folder.mkdir()
        (folder / MARKER).write_text('{"cnnlab_run": 1}\n')
    (old_run / "config.yaml").write_text("name: old\n")
    (old_run / "summary.json").write_text("{}\n")
    check_out_dir(old_run, True, kind="train")
    with pytest.raises(CnnlabError, match="it is a training run"):
        check_out_dir(old_run, True, kind="sweep")
    with pytest.raises(CnnlabError, match="no recorded kind.*delete it yourself"):
        check_out_dir(old_other, True, kind="train")


def test_files_of_the_same_kind_are_replaced_and_exports_are_recognised(world, tmp_path, capsys):
    for name in ("explain.png", "preview.png", "report.html"):
        shutil.copy(world / name, tmp_path / name)
    assert check_out_file(tmp_path / "explain.png", True, kind="explain", suffixes=(".png",))
    assert check_out_file(tmp_path / "report.html", True, kind="report", suffixes=(".html",))
    out = tmp_path / "m.pt"
    assert main(["export", str(world / "run"), "--format", "torchscript", "--parity-images", "0",
                 "--out", str(out)]) == 0
    first = out.read_bytes()
    capsys.readouterr()
    assert main(["export", str(world / "run"), "--format", "torchscript", "--parity-images", "0",
                 "--out", str(out), "--overwrite"]) == 0  # its own export, replaced
    assert out.is_file() and out.read_bytes()[:2] == first[:2] == b"PK"


# ------------------------------------------------------------------ sweep storage: never another app's database


def test_sweep_refuses_a_database_with_other_tables(world, capsys, tmp_path):
    import sqlite3

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table users (id integer primary key, name text)")
        conn.execute("insert into users (name) values ('ada')")
    before = db.read_bytes()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00not a database at all" * 100)
    for url, words in ((f"sqlite:///{db}", "holds 1 other table(s) (users) and no Optuna study"),
                       (f"sqlite:///{junk}", "cannot open the study storage")):
        code = main(["sweep", str(world / "sweep.yaml"), "--trials", "1", "--quiet", "--storage", url,
                     "--out", str(tmp_path / "sweep")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and words in err, err
    assert db.read_bytes() == before and not (tmp_path / "sweep").exists()


# ------------------------------------------------------------------ names are names, not paths


@pytest.mark.parametrize("argv", [
    ["train", "W/evil.yaml", "--quiet"],
    ["train", "W/tiny.yaml", "name=../../elsewhere", "--quiet"],
    ["ablate", "W/evil.yaml", "--quiet"],
    ["sweep", "W/evil-sweep.yaml", "--quiet"],
], ids=["train-config", "train-override", "ablate", "sweep-spec"])
def test_a_name_with_a_path_in_it_is_refused(world, capsys, tmp_path, monkeypatch, argv):
    (world / "evil.yaml").write_text((world / "tiny.yaml").read_text().replace("name: tiny", "name: ../../../elsewhere"))
    (world / "evil-sweep.yaml").write_text((world / "sweep.yaml").read_text().replace("name: s", "name: a/../../b"))
    cwd = tmp_path / "deep" / "er" / "work"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    code = main([str(a).replace("W/", f"{world}/") for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a plain name" in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "er", "work"]  # nothing written anywhere


@pytest.mark.parametrize("name", ["..", ".hidden", "a\\b", "tab\there", "x" * 201, ""])
def test_check_name_refuses_what_is_not_a_plain_name(name):
    from cnnlab.errors import CnnlabError
    from cnnlab.rundir import check_name

    with pytest.raises(CnnlabError, match="is not a plain name"):
        check_name(name)
    assert check_name("mnist-fast_v1.2") == "mnist-fast_v1.2"


# ------------------------------------------------------------------ bounded work from small inputs


@pytest.mark.parametrize("args", [["--mistakes", "100000"], ["--class", "1", "--count", "100000"],
                                  ["--index", *map(str, range(1001))]])
def test_explain_bounds_the_figures_it_draws(world, capsys, args):
    refused(world, capsys, ["explain", "W/run", *args, "--out", "W/new-explain"], "at most 1000")


def test_an_interrupted_explanation_leaves_no_folder(world, capsys, monkeypatch):
    from cnnlab.explain import figures, workflow

    drawn = []
    real = figures.explanation_figure

    def interrupted(*args, **kwargs):
        if len(drawn) == 9:
            raise KeyboardInterrupt
        drawn.append(real(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(workflow, "explanation_figure", interrupted)  # where explain_run looks it up
    out = world / "interrupted"
    files = sorted(str(p) for p in (world / "images").rglob("*.png"))[:12]
    assert len(files) == 12
    code = main(["explain", str(world / "run"), *files, "--methods", "saliency", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and len(drawn) == 9 and not out.exists(), err
    assert "figure 1/12" in err and "figure 12/12" not in err  # progress every 10 %, none after the stop
    assert not [p for p in world.iterdir() if p.name.startswith(".cnnlab-new")]


def test_make_scenes_refuses_terabytes_with_the_estimate(world, capsys, tmp_path):
    from cnnlab.data.locate import find_dataset_dir
    from cnnlab.errors import CnnlabError

    try:
        find_dataset_dir("mnist")
    except CnnlabError as exc:
        pytest.skip(f"real MNIST not available: {exc}")
    code = main(["data", "make-scenes", "mnist", "--size", "4096", "--train", "10000000",
                 "--out", str(tmp_path / "scenes")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "GiB" in err and "more than the 20 GiB" in err, err
    assert list(tmp_path.iterdir()) == []  # no folder, no staging folder


def test_a_path_through_a_missing_folder_and_dotdot_is_refused(world, capsys):
    """``o/../out-sweep`` is out-sweep once o exists: creating o first would dodge the check (the fuzzer's find)."""
    refused(world, capsys, [*TRAIN, "--out", "W/o/../out-sweep", "--overwrite"], "goes through", "without '..'")
    refused(world, capsys, ["explain", "filters", "W/run", "--out", "W/o/../explain.png"], "goes through")


# ------------------------------------------------------------------ predict --out (a detection run's drawings)


@pytest.fixture(scope="module")
def detect_run(world):
    """A tiny detection run in the world (the detection tests' recipe), and one of its images."""
    import contextlib
    import io

    from tests.detect.scenes import squares, write_voc
    from tests.detect.test_cli import TRAIN as DETECT_TRAIN

    root = world / "voc"
    data = squares(4, 64, seed=3)
    write_voc(root, data, "train")
    write_voc(root, data, "test")
    (world / "detect.yaml").write_text("task: detect\n")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(world / "detect.yaml"), "--quiet", *DETECT_TRAIN, f"data.root={root}",
                     "--out", str(world / "drun")]) == 0
    return world / "drun", sorted((root / "JPEGImages").iterdir())[0]


@pytest.mark.parametrize("victim, overwrite, words", [
    *[(f"W/out-{k}", True, "refusing to overwrite") for k in DIR_KINDS if k != "predict"],
    ("W/run", True, "it is a training run"),
    ("W/drun", True, "input of this command"),
    ("W/voc", True, "input of this command"),  # holds the image drawn
    ("W/mine", True, "not a cnnlab run directory"),
    ("W/out-predict", False, "already exists; pass --overwrite"),
])
def test_predict_out_follows_the_policy(world, detect_run, capsys, victim, overwrite, words):
    run, image = detect_run
    refused(world, capsys, ["predict", run, image, "--out", victim, *(["--overwrite"] if overwrite else [])], words)
