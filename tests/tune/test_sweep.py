"""`cnnlab sweep` on tiny real trainings: outputs, seeds, plain-Optuna readability, workers, crashes, resume."""

from __future__ import annotations

import csv
import json
import uuid

import optuna
import pytest

from cnnlab.tune.spec import load_spec, spec_from_dict
from cnnlab.tune.sweep import PruningCallback, make_sampler, resume_sweep, suggest
from tests.tune.conftest import cli, postgres_url


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sweep_writes_every_output_and_loads_in_plain_optuna(tmp_path, make_spec, capsys):
    out = tmp_path / "sweep"
    code, stdout, err = cli(capsys, "sweep", make_spec(trials=3), "--out", out, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["trials"]["complete"] == 3
    rows = read_csv(out / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    for r in rows:  # every trial is an ordinary run directory
        run = json.loads((out / "trials" / f"{int(r['number']):04d}" / "summary.json").read_text())
        assert run["status"] == "completed" and run["test_accuracy"] == pytest.approx(float(r["test_accuracy"]))
        assert r["run_dir"] == str(out.absolute() / "trials" / f"{int(r['number']):04d}")
    for plot in ("parallel_coordinates", "importance", "slice", "best_vs_time"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000, summary["plots_skipped"]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "http://" not in page and "https://" not in page
    assert f"Best trial: #{summary['best_trial']}" in page

    # The study, read with nothing but Optuna, holds the same parameters and values as trials.csv.
    study = optuna.load_study(study_name="tiny-sweep", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3
    for t, r in zip(study.trials, rows):
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.value == pytest.approx(float(r["value"]))
        assert t.params["optim.lr"] == pytest.approx(float(r["param:optim.lr"]))
        assert t.params["model.dense"] == int(r["param:model.dense"])
        # the objective is the validation accuracy of the last epoch, as the run recorded it
        lines = [json.loads(x) for x in open(r["run_dir"] + "/metrics.jsonl")]
        assert t.value == [x for x in lines if x["type"] == "epoch"][-1]["val_accuracy"]
    best = max(rows, key=lambda r: float(r["value"]))
    assert summary["best_value"] == pytest.approx(float(best["value"]))

    code, stdout, _ = cli(capsys, "sweep", "--status", out)
    assert code == 0 and len(stdout.strip().splitlines()) == 4 and "optim.lr" in stdout


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_same_seed_gives_the_same_suggestions(sampler, base_yaml):
    """Through cnnlab's sampler and suggest(): seed s twice -> the same 12 points; another seed -> others."""
    raw = {"base": str(base_yaml), "sampler": {"name": sampler, "seed": 7},
           "space": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                     "optim.name": ["adam", "sgd"],
                     "optim.momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optim.name": "sgd"}},
                     "model.filters": [[4, 8], [8, 16]], "data.batch_size": {"type": "int", "low": 4, "high": 32}}}

    def sequence(seed):
        spec = spec_from_dict({**raw, "sampler": {"name": sampler, "seed": seed}})
        study = optuna.create_study(sampler=make_sampler(spec), direction="maximize")
        seen = []
        for _ in range(12):
            trial = study.ask()
            params = suggest(trial, spec)
            seen.append(params)
            # a deterministic objective, so TPE's model (after its startup trials) is the same too
            study.tell(trial, -abs(params["optim.lr"] - 0.01) - 0.001 * params["data.batch_size"])
        return seen

    first, again, other = sequence(7), sequence(7), sequence(8)
    assert first == again
    assert first != other
    assert any("optim.momentum" in p for p in first) and any("optim.momentum" not in p for p in first)
    assert all(("optim.momentum" in p) == (p["optim.name"] == "sgd") for p in first)  # conditional
    assert all(p["model.filters"] in ([4, 8], [8, 16]) for p in first)  # lists decoded back


def test_same_seed_same_sweep_end_to_end(tmp_path, make_spec, capsys):
    spec = make_spec(trials=3, sampler={"name": "tpe", "seed": 3, "startup_trials": 1})
    for name in ("a", "b"):
        assert cli(capsys, "sweep", spec, "--out", tmp_path / name, "--quiet")[0] == 0
    a, b = read_csv(tmp_path / "a" / "trials.csv"), read_csv(tmp_path / "b" / "trials.csv")
    assert [(r["param:optim.lr"], r["param:model.dense"], r["value"]) for r in a] == \
           [(r["param:optim.lr"], r["param:model.dense"], r["value"]) for r in b]


def _check_exactly_once(study_trials, n, sweep_dirs):
    numbers = sorted(t.number for t in study_trials)
    assert numbers == list(range(n))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study_trials)
    run_dirs = [t.user_attrs["run_dir"] for t in study_trials]
    assert len(set(run_dirs)) == n
    on_disk = sorted(p.name for d in sweep_dirs for p in (d / "trials").iterdir())
    assert on_disk == sorted(r.split("/")[-1] for r in run_dirs)  # no trial ran twice, none is missing
    workers = {t.user_attrs["worker"] for t in study_trials}
    assert workers <= {0, 1}


def test_two_workers_share_sqlite_and_run_every_trial_once(tmp_path, make_spec, capsys):
    out = tmp_path / "sweep"
    code, stdout, err = cli(capsys, "sweep", make_spec(trials=4), "--out", out, "--workers", 2, "--json")
    assert code == 0, err
    study = optuna.load_study(study_name="tiny-sweep", storage=f"sqlite:///{out / 'study.db'}")
    _check_exactly_once(study.trials, 4, [out])
    assert len(read_csv(out / "trials.csv")) == 4


def _postgres_or_skip():
    import os

    from cnnlab.errors import CnnlabError
    from cnnlab.tune.storage import open_storage

    try:
        open_storage(postgres_url())
    except CnnlabError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise AssertionError(f"CI must run the PostgreSQL test; .ci/run starts the server: {exc}")
        pytest.skip(f"no PostgreSQL server reachable (start one with `.ci/postgres.sh start`): {exc}")


def test_two_workers_share_postgresql_and_run_every_trial_once(tmp_path, make_spec, capsys):
    _postgres_or_skip()
    study_name = f"test-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "sweep"
    code, stdout, err = cli(capsys, "sweep", make_spec(trials=4), "--out", out, "--workers", 2,
                            "--storage", postgres_url(), "--study", study_name, "--json")
    assert code == 0, err
    assert not (out / "study.db").exists()
    study = optuna.load_study(study_name=study_name, storage=postgres_url())  # plain Optuna, on the server
    _check_exactly_once(study.trials, 4, [out])
    # a second machine (its own --out) joins the same study with a budget of 5: it runs the one trial left
    code, _, err = cli(capsys, "sweep", make_spec(trials=5), "--out", tmp_path / "second", "--storage",
                       postgres_url(), "--study", study_name, "--quiet")
    assert code == 0, err
    trials = optuna.load_study(study_name=study_name, storage=postgres_url()).trials
    assert len(trials) == 5 and trials[4].user_attrs["sweep_dir"] == str((tmp_path / "second").absolute())
    optuna.delete_study(study_name=study_name, storage=postgres_url())


def test_crashing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, make_spec, capsys):
    # kernel 9 with "valid" padding cannot fit 16x16 images after a pool: that trial fails to build.
    spec = make_spec(trials=2, sampler={"name": "grid", "seed": 0},
                     space={"model.kernel_size": [3, 31], "model.padding": ["valid"]})
    out = tmp_path / "sweep"
    code, stdout, err = cli(capsys, "sweep", spec, "--out", out, "--json")
    assert code == 0, err
    rows = {r["param:model.kernel_size"]: r for r in read_csv(out / "trials.csv")}
    assert rows["3"]["state"] == "complete"
    assert rows["31"]["state"] == "fail" and "31" in rows["31"]["error"]
    assert "trial" in err and "fail" in err
    study = optuna.load_study(study_name="tiny-sweep", storage=f"sqlite:///{out / 'study.db'}")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["error"] == rows["31"]["error"]


def test_pruning_callback_stops_the_run(tmp_path, base_yaml):
    """A trial the pruner rejects stops after that epoch: the run's status is 'pruned'."""
    from cnnlab.config import load_config
    from cnnlab.train.run import train

    class Trial:
        reports = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return True

    cfg = load_config(str(base_yaml), ["train.epochs=4"])
    callback = PruningCallback(Trial(), "val_accuracy")
    summary = train(cfg, tmp_path / "run", callbacks=[callback], quiet=True)
    assert summary["status"] == "pruned" and summary["epochs"] == 1 and callback.pruned
    assert Trial.reports == [(1, callback.last)]


def test_median_pruner_prunes_bad_trials(tmp_path, make_spec, capsys):
    # Grid seed 5 visits lr 0.01, 0.02, then 1e-6, 2e-6 (Optuna's seeded shuffle). lr 1e-6 learns nothing, so
    # once the two good trials have set the median, the median pruner stops both bad ones after epoch 1.
    spec = make_spec(trials=4, sampler={"name": "grid", "seed": 5}, pruner={"name": "median", "startup_trials": 2},
                     space={"optim.lr": [0.01, 0.02, 1.0e-6, 2.0e-6]}, overrides={"train.epochs": 3})
    out = tmp_path / "sweep"
    code, stdout, err = cli(capsys, "sweep", spec, "--out", out, "--json")
    assert code == 0, err
    rows = read_csv(out / "trials.csv")
    assert [float(r["param:optim.lr"]) for r in rows] == [0.01, 0.02, 1e-6, 2e-6]
    assert [r["state"] for r in rows] == ["complete", "complete", "pruned", "pruned"]
    assert [r["epochs"] for r in rows][:2] == ["3", "3"] and all(int(r["epochs"]) < 3 for r in rows[2:])
    for r in rows[2:]:
        assert json.loads(open(r["run_dir"] + "/summary.json").read())["status"] == "pruned"
    summary = json.loads(stdout)
    assert summary["trial_epochs"] == sum(int(r["epochs"]) for r in rows) < 12 and summary["trials"]["pruned"] == 2


def test_resume_reruns_interrupted_trials_and_keeps_the_budget(tmp_path, make_spec, capsys):
    out = tmp_path / "sweep"
    assert cli(capsys, "sweep", make_spec(trials=2, sampler={"name": "random", "seed": 0}), "--out", out,
               "--quiet")[0] == 0
    # a worker killed mid-trial leaves its trial RUNNING in the study
    study = optuna.load_study(study_name="tiny-sweep", storage=f"sqlite:///{out / 'study.db'}")
    stale = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-3, 3e-2, log=True),
                       "model.dense": optuna.distributions.CategoricalDistribution([8, 16])})
    stale.set_user_attr("sweep_dir", str(out.absolute()))
    stale_params = dict(study.trials[-1].params)
    summary = resume_sweep(out, trials=3, quiet=True)
    study = optuna.load_study(study_name="tiny-sweep", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[2].user_attrs["interrupted"] is True
    assert study.trials[3].user_attrs["retry_of"] == 2 and study.trials[3].params == stale_params
    assert summary["trials"]["complete"] == 3 and summary["trials"]["interrupted"] == 1
    # nothing more to do: a resume with the same budget runs no trial
    resume_sweep(out, trials=3, quiet=True)
    assert len(optuna.load_study(study_name="tiny-sweep", storage=f"sqlite:///{out / 'study.db'}").trials) == 4
    # a larger budget draws new points: the resumed sampler does not replay the first run's random draws
    resume_sweep(out, trials=5, quiet=True)
    trials = optuna.load_study(study_name="tiny-sweep", storage=f"sqlite:///{out / 'study.db'}").trials
    assert len(trials) == 6 and trials[4].params not in [t.params for t in trials[:4]]
    assert trials[5].params not in [t.params for t in trials[:5]]


def test_shipped_specs_validate():
    for name in ("sweep-mnist-quick", "sweep-imagenette-convnet"):
        spec = load_spec(name)
        assert spec.trials >= 20 and spec.pruner["name"] != "none"
    spec = load_spec("sweep-imagenette-convnet")
    keys = [p.key for p in spec.space]
    assert {"model.filters", "model.organisation", "model.kernel_size", "model.norm", "augmentation",
            "model.dropout", "model.dense", "model.activation", "optimizer", "data.batch_size"} == set(keys)
    cfg = spec.config_for({"optimizer": {"optim.name": "sgd", "optim.nesterov": True},
                           "augmentation": {"data.augment.hflip": 0.5}})
    assert cfg.optim.name == "sgd" and cfg.optim.nesterov and cfg.data.augment.hflip == 0.5
    assert cfg.data.augment.brightness == 0.0  # the base's colour jitter is reset by the spec
    again = spec.config_for({})
    assert again.data.augment.hflip == 0.0  # a bundle never leaks into the next trial


def test_list_status_html_and_bundles(tmp_path, make_spec, capsys):
    code, stdout, _ = cli(capsys, "sweep", "--list")
    assert code == 0 and "sweep-mnist-quick" in stdout and "sweep-imagenette-convnet" in stdout
    spec = make_spec(trials=2, sampler={"name": "grid", "seed": 0},
                     space={"optimizer": {"choices": {"adam": {"optim.name": "adam"},
                                                      "sgd-nesterov": {"optim.name": "sgd", "optim.nesterov": True,
                                                                       "optim.lr": 0.05}}}})
    out = tmp_path / "sweep"
    code, _, err = cli(capsys, "sweep", spec, "--out", out)
    assert code == 0, err
    assert "optimizer=sgd-nesterov" in err  # a bundle is shown (and stored) by its label
    rows = {r["param:optimizer"]: r for r in read_csv(out / "trials.csv")}
    import yaml

    cfg = yaml.safe_load(open(rows["sgd-nesterov"]["run_dir"] + "/config.yaml"))
    assert cfg["optim"]["name"] == "sgd" and cfg["optim"]["nesterov"] is True and cfg["optim"]["lr"] == 0.05
    (out / "report.html").unlink()
    code, stdout, err = cli(capsys, "sweep", "--status", out, "--html")
    assert code == 0 and (out / "report.html").is_file() and "sgd-nesterov" in stdout
