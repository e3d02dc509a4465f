"""Sweep specs are read as user input is: a relative ``base:`` is the spec's own folder's file, an alias
bomb is refused, and a space where no point can build a model is refused before any trial runs."""

from __future__ import annotations

import shutil

import yaml

from tests.tune.conftest import cli


def test_a_relative_base_is_found_beside_the_spec_not_in_the_cwd(tmp_path, base_yaml, make_spec, monkeypatch,
                                                                 capsys):
    folder = tmp_path / "specs"
    folder.mkdir()
    shutil.copy(base_yaml, folder / "base.yaml")
    spec = yaml.safe_load(make_spec(trials=1).read_text())
    spec["base"] = "base.yaml"
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no base.yaml here
    code, _, err = cli(capsys, "sweep", folder / "spec.yaml", "--out", tmp_path / "sw", "--quiet", "--json")
    assert code == 0, err
    assert (tmp_path / "sw" / "trials.csv").is_file()


def test_an_alias_bomb_in_a_spec_is_one_line(tmp_path, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\nbase: mnist-fast\n")
    code, _, err = cli(capsys, "sweep", tmp_path / "bomb.yaml", "--out", tmp_path / "sw")
    assert code == 2 and err.count("\n") == 1 and "expands to more than" in err, err
    assert not (tmp_path / "sw").exists()


def test_a_space_that_never_builds_a_model_is_refused_up_front(tmp_path, make_spec, capsys):
    spec = make_spec(trials=3, space={"model.filters": [[4, 8, 16, 32, 64, 64, 64]], "model.blocks": [7]})
    code, out, err = cli(capsys, "sweep", spec, "--out", tmp_path / "sw")
    assert code == 2 and err.count("\n") == 1, err
    assert "no point of the search space builds a model" in err and "model.blocks=7" in err, err
    assert "no trial completed" not in out and not (tmp_path / "sw").exists()
