"""``train.precision=fp16``: fp16 autocast with a gradient scaler where the device does fp16 natively,
one line where it does not. This CPU's torch emulates fp16, so the fp16 path is run here with the
support check patched (torch 2.14's CPU autocast and GradScaler('cpu') do run, only slowly)."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.train import precision
from cnnlab.checkpoint import load_checkpoint
from cnnlab.train.run import train
from tests.train.helpers import toy_config, toy_data
from tests.train.test_train_effects import AppliedGradients, ForwardProbe


def _run(tmp_path, name, *overrides, callbacks=()):
    cfg = toy_config("optim.name=sgd", "optim.lr=0.05", "train.epochs=1", "train.log_every=1", "train.device=cpu",
                     "model.dropout=0", "data.augment.noise_std=0", "data.augment.crop_padding=0", *overrides)
    return train(cfg, tmp_path / name, data=toy_data(), quiet=True, callbacks=list(callbacks))


def test_fp16_autocasts_and_the_optimizer_sees_unscaled_gradients(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "fp16_supported", lambda device: True)
    fp32_grads, fp16_grads, probe = AppliedGradients(), AppliedGradients(), ForwardProbe()
    _run(tmp_path, "fp32", callbacks=[fp32_grads])
    summary = _run(tmp_path, "fp16", "train.precision=fp16", "train.checkpoint_every=1",
                   callbacks=[fp16_grads, probe])
    assert summary["status"] == "completed" and summary["effective"]["precision"] == "fp16"
    assert probe.logit_dtypes == {torch.float16}
    # the loss was scaled by 65536 for backward; the optimizer got the true gradients back (fp16 rounding aside)
    assert fp16_grads.norms[0] == pytest.approx(fp32_grads.norms[0], rel=0.02)
    state = load_checkpoint(tmp_path / "fp16" / "last.pt")
    assert state["scaler"]["scale"] == 65536.0 and "scaler" not in load_checkpoint(tmp_path / "fp32" / "last.pt")


def test_fp16_step_matches_autocast_and_gradscaler_by_hand(monkeypatch):
    """One Trainer step against the torch recipe written out: autocast, scale, backward, unscale, step, update."""
    from cnnlab.models import create_model
    from cnnlab.train.optim import build_optimizer

    monkeypatch.setattr(precision, "fp16_supported", lambda device: True)
    cfg = toy_config("optim.name=sgd", "optim.lr=0.1", "train.precision=fp16", "model.dropout=0")
    torch.manual_seed(0)
    model = create_model("convnet", filters=[4, 8], dense=16, image_size=8, num_classes=3)
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 3
    ref = create_model("convnet", filters=[4, 8], dense=16, image_size=8, num_classes=3)
    ref.load_state_dict(model.state_dict())

    opt = build_optimizer(ref, cfg.optim)
    scaler = torch.amp.GradScaler("cpu")
    with torch.autocast("cpu", dtype=torch.float16):
        logits = ref(x)
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    for group in opt.param_groups:
        group["lr"] = 0.1 / 25  # one-cycle's first step: peak / initial_div
    scaler.step(opt)
    scaler.update()

    from cnnlab.train.trainer import Trainer

    class Batches:
        batch_size = 16

        def __len__(self):
            return 1

    trainer = Trainer.__new__(Trainer)  # only the parts one step uses
    trainer.cfg, trainer.model, trainer.train_model, trainer.device = cfg, model, model, torch.device("cpu")
    from cnnlab.tasks import get_task

    trainer.task, trainer.callbacks, trainer.world_size = get_task("classify"), [], 1
    trainer.optimizer = build_optimizer(model, cfg.optim)
    trainer.scaler = precision.make_scaler("fp16", trainer.device)
    from cnnlab.train.optim import penalty_weights
    from cnnlab.train.schedule import LRSchedule

    trainer.schedule = LRSchedule(cfg.schedule, cfg.optim.lr, 100, 10)
    trainer.penalty_weights, trainer.params, trainer.step = penalty_weights(model), list(model.parameters()), 0
    trainer._sums = {"loss": torch.zeros((), dtype=torch.float64), "correct": torch.zeros((), dtype=torch.int64),
                     "count": torch.zeros((), dtype=torch.int64)}
    model.train()
    ref.train()
    trainer._train_step(x, y, want_grad_norm=False)
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_fp16_refused_in_one_line_where_the_device_lacks_it(tmp_path, monkeypatch, capsys):
    from cnnlab.cli import main

    monkeypatch.setattr(precision, "fp16_supported", lambda device: False)
    out = tmp_path / "run"
    code = main(["train", "mnist-fast", "train.precision=fp16", "train.device=cpu", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert err[0] == ("cnnlab: error: train.precision=fp16: this CPU has no native fp16 arithmetic (torch would "
                      "emulate it, slower than fp32); use train.precision=bf16 or fp32 here, or fp16 on a GPU")
    with pytest.raises(CnnlabError, match="not mps"):
        precision.check_fp16(torch.device("mps"))
    monkeypatch.undo()  # the real answer on this machine follows oneDNN's own check
    assert precision.fp16_supported(torch.device("cpu")) == bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    assert precision.fp16_supported(torch.device("cuda"))
