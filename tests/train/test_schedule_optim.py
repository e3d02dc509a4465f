"""Schedules against hand-computed values and torch's own implementations."""

import dataclasses
import math

import pytest
import torch

from cnnlab.config import OptimConfig, ScheduleConfig
from cnnlab.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.train.monitor import Monitor
from cnnlab.train.optim import build_optimizer, penalty
from cnnlab.train.schedule import LRSchedule
from cnnlab.errors import CnnlabError


def test_onecycle_matches_torch_onecyclelr():
    total, peak = 100, 0.1
    ours = LRSchedule(ScheduleConfig(name="onecycle", warmup_fraction=0.3, initial_div=25, final_div=1e4),
                      peak, total, 10)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
    # torch's final_div_factor is relative to the initial rate, ours to the peak; torch's warm-up
    # phase ends at step pct_start * total_steps - 1, ours at warmup_fraction * total (= 30 here).
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=total + 1, pct_start=31 / (total + 1),
                                              div_factor=25, final_div_factor=1e4 / 25, anneal_strategy="cos")
    for step in range(total + 1):
        assert ours.lr_at(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6, abs=1e-12), step
        opt.step()
        ref.step()


def test_cosine_with_warmup_by_hand():
    s = LRSchedule(ScheduleConfig(name="cosine", warmup_epochs=1, min_lr=0.0), 1.0, 30, 10)
    assert s.lr_at(0) == pytest.approx(0.1) and s.lr_at(9) == pytest.approx(1.0)
    assert s.lr_at(10) == pytest.approx(1.0) and s.lr_at(20) == pytest.approx(0.5) and s.lr_at(30) == pytest.approx(0.0)


def test_step_schedule_by_hand():
    s = LRSchedule(ScheduleConfig(name="step", step_epochs=2, factor=0.1), 1.0, 60, 10)
    assert [round(s.lr_at(e * 10), 6) for e in range(6)] == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]


def test_plateau_matches_torch_reduce_on_plateau():
    values = [1.0, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8]
    ours = LRSchedule(ScheduleConfig(name="plateau", patience=1, factor=0.5, threshold=0.0), 1.0, 100, 10,
                      monitor=Monitor("val_loss", "min"))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1, threshold=0.0,
                                                     threshold_mode="abs")
    for v in values:
        ours.end_of_epoch(v)
        ref.step(v)
        assert ours.lr_at(0) == pytest.approx(opt.param_groups[0]["lr"])


def test_weight_decay_skips_norm_and_bias_unless_asked():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    groups = build_optimizer(model, OptimConfig(name="sgd", weight_decay=0.1)).param_groups
    assert [len(g["params"]) for g in groups] == [1, 3] and groups[1]["weight_decay"] == 0
    groups = build_optimizer(model, OptimConfig(name="sgd", weight_decay=0.1, decay_norm_and_bias=True)).param_groups
    assert len(groups) == 1 and len(groups[0]["params"]) == 4


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))


# cnnlab's optimizer config next to torch's optimizer with the same hyperparameters, written out by hand.
OPTIMIZERS = {
    "sgd": (OptimConfig(name="sgd", lr=0.05, momentum=0.5),
            lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.5)),
    "sgd_nesterov": (OptimConfig(name="sgd", lr=0.05, momentum=0.5, nesterov=True),
                     lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.5, nesterov=True)),
    "adam": (OptimConfig(name="adam", lr=0.05, betas=(0.8, 0.9), eps=1e-3, amsgrad=True),
             lambda g: torch.optim.Adam(g, lr=0.05, betas=(0.8, 0.9), eps=1e-3, amsgrad=True)),
    "adamw": (OptimConfig(name="adamw", lr=0.05, betas=(0.8, 0.9), eps=1e-3),
              lambda g: torch.optim.AdamW(g, lr=0.05, betas=(0.8, 0.9), eps=1e-3)),
    # torch's fused kernels (one call per step) against its per-tensor loop
    "sgd_fused": (OptimConfig(name="sgd", lr=0.05, momentum=0.5, nesterov=True, fused=True),
                  lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.5, nesterov=True, foreach=False)),
    "adam_fused": (OptimConfig(name="adam", lr=0.05, betas=(0.8, 0.9), eps=1e-3, amsgrad=True, fused=True),
                   lambda g: torch.optim.Adam(g, lr=0.05, betas=(0.8, 0.9), eps=1e-3, amsgrad=True, foreach=False)),
    "adamw_fused": (OptimConfig(name="adamw", lr=0.05, betas=(0.8, 0.9), eps=1e-3, fused=True),
                    lambda g: torch.optim.AdamW(g, lr=0.05, betas=(0.8, 0.9), eps=1e-3, foreach=False)),
    "rmsprop": (OptimConfig(name="rmsprop", lr=0.05, alpha=0.9, eps=1e-3, momentum=0.5),
                lambda g: torch.optim.RMSprop(g, lr=0.05, alpha=0.9, eps=1e-3, momentum=0.5)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("decay_norm_and_bias", [False, True])
def test_optimizer_steps_equal_torchs(name, decay_norm_and_bias):
    cfg, make_reference = OPTIMIZERS[name]
    cfg = dataclasses.replace(cfg, weight_decay=0.5, decay_norm_and_bias=decay_norm_and_bias)
    ours, ref = small_model(), small_model()
    opt = build_optimizer(ours, cfg)
    assert bool(opt.defaults.get("fused")) == cfg.fused
    weights = [p for p in ref.parameters() if p.ndim > 1]  # conv and linear weights decay
    others = [p for p in ref.parameters() if p.ndim <= 1]  # biases and batch-norm scales/shifts do not
    ref_opt = make_reference([{"params": weights, "weight_decay": 0.5},
                              {"params": others, "weight_decay": 0.5 if decay_norm_and_bias else 0.0}])
    gen = torch.Generator().manual_seed(1)
    for step in range(3):  # several steps: momentum, betas and AMSGrad act from the second on
        x, y = torch.randn(4, 2, 6, 6, generator=gen), torch.tensor([0, 1, 1, 0])
        for model, optimizer in ((ours, opt), (ref, ref_opt)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        for (key, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
            # A fused kernel orders its float operations differently. The conv bias before batch norm gets
            # gradients of ~1e-9, which Adam divides by their own root mean square: its rounding shows at 1e-6.
            tol = dict(rtol=1e-5, atol=1e-5) if cfg.fused else dict(rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(a, b, **tol, msg=f"{key} after step {step + 1}")


def test_penalty_by_hand():
    w = torch.tensor([[1.0, -2.0]])
    assert penalty([w], l1=0.5, l2=0.0).item() == pytest.approx(1.5)
    assert penalty([w], l1=0.0, l2=0.1).item() == pytest.approx(0.5)
    assert penalty([w], 0.0, 0.0) is None


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "epoch": 3})
    assert load_checkpoint(path)["epoch"] == 3
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CnnlabError, match="corrupt or not a cnnlab checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CnnlabError, match="corrupt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(1)}, foreign)
    with pytest.raises(CnnlabError, match="not a cnnlab checkpoint"):
        load_checkpoint(foreign)


class Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_checkpoint_with_objects_is_not_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "cnnlab-checkpoint", "x": Payload()}, path)
    with pytest.raises(CnnlabError, match="corrupt or not a cnnlab checkpoint"):
        load_checkpoint(path)
    assert "unpickled!" not in capsys.readouterr().out
