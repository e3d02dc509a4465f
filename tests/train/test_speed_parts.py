"""The speed-run parts, each against an independent reference: patch whitening (whitened patches have
identity covariance), Lookahead and weight EMA (hand-computed steps), test-time augmentation (the mean
of logits of views built pixel by pixel), per-1024 scaling, and torch.compile's eager fallback."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.config import load_config
from cnnlab.train.ema import WeightEMA
from cnnlab.train.fastpath import compile_model, effective_config
from cnnlab.train.lookahead import Lookahead
from cnnlab.train.run import train
from cnnlab.train.tta import tta_logits, tta_views
from cnnlab.train.whitening import whiten_conv_
from tests.train.helpers import toy_config, toy_data


class FakeTrainer:
    def __init__(self, model):
        self.model = model


# ----------------------------------------------------------------------------- whitening

def correlated_images(n=300, c=2, size=10, seed=0):
    """Images whose neighbouring pixels and channels are strongly correlated (blurred, mixed noise)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, size + 2, size + 2, generator=gen)
    x = F.avg_pool2d(x, 3, stride=1)  # spatial correlation
    mix = torch.tensor([[1.0, 0.0], [0.8, 0.3]])[:c, :c]
    return torch.einsum("dc,nchw->ndhw", mix, x) * 3 + 1.5  # channel correlation, non-zero mean


@pytest.mark.parametrize("bias", [False, True])
def test_whitened_patches_have_identity_covariance(bias):
    images = correlated_images()
    conv = nn.Conv2d(2, 8, 2, bias=bias)  # d = 2*2*2 = 8 filters
    whiten_conv_(conv, images, eps=1e-9)
    out = conv(images).detach().double()  # (N, 8, H-1, W-1): one whitened feature vector per patch
    feats = out.permute(0, 2, 3, 1).reshape(-1, 8)
    # Reference: NumPy's covariance of the conv outputs, computed apart from the code under test.
    cov = np.cov(feats.numpy(), rowvar=False)
    assert np.allclose(cov, np.eye(8), atol=1e-3)
    raw = images.unfold(2, 2, 1).unfold(3, 2, 1)  # the input patches are far from white
    raw_cov = np.cov(raw.permute(0, 2, 3, 1, 4, 5).reshape(-1, 8).numpy(), rowvar=False)
    assert not np.allclose(raw_cov, np.eye(8), atol=0.3)
    if bias:  # centred outputs as well
        assert np.allclose(feats.mean(0).numpy(), 0, atol=1e-6)


def test_whitening_fills_both_signs_and_keeps_extra_filters():
    images = correlated_images(c=1)
    conv = nn.Conv2d(1, 10, 2, bias=False)  # d = 4: [E, -E] fills 8, two stay random
    before = conv.weight.detach().clone()
    info = whiten_conv_(conv, images)
    w = conv.weight.detach()
    assert info["filters"] == 8
    assert torch.allclose(w[:4], -w[4:8])
    assert torch.equal(w[8:], before[8:])


def test_frozen_whitening_is_not_trained(tmp_path):
    cfg = toy_config("train.epochs=1", "train.whitening=frozen")
    summary = train(cfg, tmp_path / "run", data=toy_data(), quiet=True)
    assert summary["effective"]["whitening"]["mode"] == "frozen"
    final = torch.load(tmp_path / "run" / "final.pt", weights_only=False)["model"]
    cfg0 = toy_config("train.epochs=1", "train.whitening=frozen", "optim.lr=0.5")  # a huge lr moves every trained weight
    summary0 = train(cfg0, tmp_path / "run0", data=toy_data(), quiet=True)
    final0 = torch.load(tmp_path / "run0" / "final.pt", weights_only=False)["model"]
    name = next(k for k in final if k.endswith("weight") and final[k].ndim == 4)  # the first conv
    assert torch.equal(final[name], final0[name])  # same whitening, never updated
    assert summary0["status"] == "completed"


# ----------------------------------------------------------------------------- Lookahead

def test_lookahead_two_sync_steps_by_hand():
    """SGD lr 0.1 on loss 0.5*w^2 from w=1, k=2, alpha=0.5.

    fast: 1 -> 0.9 -> 0.81; sync: slow = 1 + 0.5*(0.81 - 1) = 0.905 = w.
    fast: 0.905 -> 0.8145 -> 0.73305; sync: slow = 0.905 + 0.5*(0.73305 - 0.905) = 0.819025.
    """
    w = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    model = nn.ParameterList([w])
    opt = torch.optim.SGD([w], lr=0.1)
    la, trainer = Lookahead(alpha=0.5, k=2), FakeTrainer(model)
    la.on_train_start(trainer)
    seen = []
    for _ in range(4):
        opt.zero_grad()
        (0.5 * w ** 2).sum().backward()
        opt.step()
        la.on_step_end(trainer, None)
        seen.append(w.item())
    assert seen == pytest.approx([0.9, 0.905, 0.8145, 0.819025], abs=1e-12)
    restored = Lookahead(0.5, 2)
    restored.load_state_dict(la.state_dict())
    assert restored.steps == 4 and restored.slow[0].item() == pytest.approx(0.819025)


# ----------------------------------------------------------------------------- EMA

def test_ema_by_hand_with_warmup_and_every():
    """decay 0.5, every 2 steps: d_0 = min(0.5, 1/10) = 0.1, d_1 = min(0.5, 2/11) = 2/11."""
    w = nn.Parameter(torch.tensor([0.0], dtype=torch.float64))
    trainer = FakeTrainer(nn.ParameterList([w]))
    ema = WeightEMA(decay=0.5, every=2)
    ema.on_train_start(trainer)
    expected = 0.0
    for step, value in enumerate([1.0, 2.0, 3.0, 4.0], start=1):
        with torch.no_grad():
            w.fill_(value)
        ema.on_step_end(trainer, None)
    # update 1 at step 2 (w=2): 0.1*0 + 0.9*2 = 1.8; update 2 at step 4 (w=4): (2/11)*1.8 + (9/11)*4
    expected = (2 / 11) * 1.8 + (9 / 11) * 4
    assert ema.shadow[0].item() == pytest.approx(expected, abs=1e-12)
    assert ema.updates == 2


def test_run_is_tested_with_the_ema_weights(tmp_path):
    cfg = toy_config("train.epochs=2", "train.ema=0.9")
    holder = {}

    class Grab(WeightEMA.__mro__[1]):  # a plain Callback that sees the EMA before it is swapped in
        def on_step_end(self, trainer, metrics):
            ema = next(cb for cb in trainer.callbacks if isinstance(cb, WeightEMA))
            holder["shadow"] = [s.clone() for s in ema.shadow]
            holder["live"] = [p.detach().clone() for p in trainer.model.parameters()]

    summary = train(cfg, tmp_path / "run", data=toy_data(), quiet=True, callbacks=[Grab()])
    assert summary["tested_weights"] == "ema"
    final = torch.load(tmp_path / "run" / "final.pt", weights_only=False)["model"]
    params = [k for k, v in final.items() if v.is_floating_point() and "running" not in k]
    assert len(params) == len(holder["shadow"])
    for key, shadow, live in zip(params, holder["shadow"], holder["live"]):
        assert torch.equal(final[key], shadow)  # final.pt holds the average ...
    assert not all(torch.equal(s, l) for s, l in zip(holder["shadow"], holder["live"]))  # ... not the last weights


# ----------------------------------------------------------------------------- TTA

def _reflect(i, n):
    """numpy.pad 'reflect' index (no edge repeat) for a single out-of-range index."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


def _view_by_hand(x, flip, dy, dx):
    """The flipped/shifted image built pixel by pixel: out[i, j] = src[i - dy, j - dx] (reflected)."""
    x = x.numpy()
    if flip:
        x = x[..., ::-1]
    n, c, h, w = x.shape
    out = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            out[:, :, i, j] = x[:, :, _reflect(i - dy, h), _reflect(j - dx, w)]
    return torch.from_numpy(out.copy())


@pytest.mark.parametrize("mode", ["flip", "flip-translate"])
def test_tta_is_the_mean_of_the_logits_of_the_views(mode):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4)).eval()
    x = torch.randn(5, 2, 8, 8)
    model(x)
    views = [(False, 0, 0), (True, 0, 0)]
    if mode == "flip-translate":
        views += [(f, d, d) for f in (False, True) for d in (-2, 2)]
    expected = torch.stack([model(_view_by_hand(x, *v)) for v in views]).mean(0)
    with torch.no_grad():
        assert torch.allclose(tta_logits(model, x, mode), expected, atol=1e-5)
    assert len(tta_views(x, mode)) == len(views)


def test_eval_cli_tta_matches_the_mean_logits(tmp_path):
    from cnnlab.cli import main
    from cnnlab.runs import load_run

    data = toy_data()
    train(toy_config("train.epochs=1"), tmp_path / "run", data=data, quiet=True)
    run = load_run(tmp_path / "run")
    # the run's config names the toy data only in memory: evaluate the library call on the same batches
    from cnnlab.data.loader import DeviceBatches
    from cnnlab.train.evaluate import evaluate

    batches = DeviceBatches(data.test_x, data.test_y, 7, mean=run.mean, std=run.std)
    result = evaluate(run.model, batches, tta="flip", keep_logits=True)
    run.model.eval()
    with torch.no_grad():
        x = torch.cat([x for x, _ in batches])
        mean_logits = (run.model(x) + run.model(x.flip(3))) / 2
    assert torch.allclose(result.logits, mean_logits, atol=1e-5)
    assert result.accuracy == pytest.approx((mean_logits.argmax(1) == data.test_y).float().mean().item())
    with pytest.raises(SystemExit):  # argparse refuses an unknown mode
        main(["eval", str(tmp_path / "run"), "--tta", "sideways"])


def test_eval_command_with_tta_on_real_mnist(tmp_path, capsys):
    """`cnnlab eval RUN --tta flip-translate --json` scores the mean logits of the six views."""
    import json

    from cnnlab.cli import main
    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run

    run_dir = tmp_path / "mnist"
    assert main(["train", "mnist-fast", "data.limit_train=512", "train.plots=false", "train.threads=1",
                 "model.filters=[4,8,8]", "data.eval_batch_size=2000",
                 "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--tta", "flip-translate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    run = load_run(run_dir)
    data = load_dataset(run.config.data)
    mean, std = torch.tensor(run.mean).view(1, -1, 1, 1), torch.tensor(run.std).view(1, -1, 1, 1)
    x = (data.test_x.float() / 255 - mean) / std
    views = [(f, d, d) for f in (False, True) for d in (0, -2, 2)]
    run.model.eval()
    with torch.no_grad():
        logits = sum(run.model(_view_by_hand_fast(x, *v)) for v in views) / len(views)
    expected = (logits.argmax(1) == data.test_y).float().mean().item()
    assert report["tta"] == "flip-translate"
    assert report["test_accuracy"] == pytest.approx(expected, abs=1e-4)  # at most one borderline image


def _view_by_hand_fast(x, flip, dy, dx):
    """As _view_by_hand with NumPy's own reflect padding (vectorised, for 10,000 images)."""
    x = x.flip(3) if flip else x
    h, w = x.shape[2:]
    p = max(abs(dy), abs(dx))
    padded = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect"))
    return padded[:, :, p - dy:p - dy + h, p - dx:p - dx + w]


# ----------------------------------------------------------------------------- per-1024 scaling

@pytest.mark.parametrize("batch", [128, 512])
def test_per_1024_learning_rate_scales_with_the_batch(tmp_path, batch):
    cfg = load_config(None, ["optim.per_1024=true", "optim.lr=4.0", "optim.weight_decay=5e-4",
                             "schedule.peak_lr=8.0", "schedule.min_lr=0.1", f"data.batch_size={batch}"])
    eff = effective_config(cfg, torch.device("cpu"), batch, notice=lambda m: None)
    assert eff.optim.lr == pytest.approx(4.0 * batch / 1024)
    assert eff.schedule.peak_lr == pytest.approx(8.0 * batch / 1024)
    assert eff.schedule.min_lr == pytest.approx(0.1 * batch / 1024)
    assert eff.optim.weight_decay == 5e-4  # multiplied by the lr in torch's update: per example unchanged
    assert cfg.optim.lr == 4.0  # the user's config is untouched


def test_per_1024_reaches_the_optimizer(tmp_path):
    seen = []

    class LR(WeightEMA.__mro__[1]):
        def on_step_end(self, trainer, metrics):
            seen.append(trainer.optimizer.param_groups[0]["lr"])

    cfg = toy_config("train.epochs=1", "schedule.name=constant", "optim.name=sgd", "optim.per_1024=true",
                     "optim.lr=2.048", "data.batch_size=16")
    summary = train(cfg, tmp_path / "run", data=toy_data(), quiet=True, callbacks=[LR()])
    assert seen and all(lr == pytest.approx(2.048 * 16 / 1024) for lr in seen)
    assert summary["effective"]["lr"] == pytest.approx(0.032)
    import yaml

    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["optim"]["lr"] == 2.048


# ----------------------------------------------------------------------------- compile and GPU options

def _bn_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_compile_failure_falls_back_to_eager_with_one_notice():
    torch.manual_seed(0)
    model = _bn_net()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = model.eval()(x).detach()
    model.train()

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C compiler found\nsecond line")

    notices = []
    seconds = compile_model(model, x, y, x, "fp32", notice=notices.append, backend=broken_backend)
    assert seconds is None
    assert len(notices) == 1 and "\n" not in notices[0] and "eager" in notices[0] and "no C compiler" in notices[0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # warm-up left no trace
    assert torch.equal(model.eval()(x).detach(), reference)  # runs eagerly, same result


def test_compile_warmup_leaves_weights_and_batchnorm_stats_unchanged():
    torch.manual_seed(0)
    model = _bn_net()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seconds = compile_model(model, x, y, x[:4], "fp32", notice=pytest.fail, backend="eager")
    assert seconds is not None and seconds >= 0
    assert set(model.state_dict()) == set(before)  # nn.Module.compile keeps the keys (no _orig_mod.)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_train_compile_failure_is_a_notice_and_the_run_completes(tmp_path, monkeypatch, capsys):
    def broken(self, *args, **kwargs):
        raise RuntimeError("InductorError: CppCompileError: C++ compile error (no compiler)")

    monkeypatch.setattr(nn.Module, "compile", broken)
    summary = train(toy_config("train.epochs=1", "train.compile=true"), tmp_path / "run", data=toy_data())
    err = capsys.readouterr().err
    assert summary["status"] == "completed" and summary["compile_seconds"] is None
    assert sum("train.compile failed" in line for line in err.splitlines()) == 1


def test_gpu_options_on_a_cpu_are_one_notice_each(tmp_path, monkeypatch, capsys):
    import cnnlab.train.fastpath as fastpath

    monkeypatch.setattr(fastpath, "bf16_supported", lambda device: False)
    summary = train(toy_config("train.epochs=1", "train.gpu_fast=true", "train.precision=bf16", "train.device=cpu"),
                    tmp_path / "run", data=toy_data())
    lines = capsys.readouterr().err.splitlines()
    assert sum("no CUDA device" in line for line in lines) == 1
    assert sum("precision=bf16" in line and "fp32" in line for line in lines) == 1
    assert summary["effective"]["precision"] == "fp32" and summary["effective"]["compile"] is False
    assert summary["status"] == "completed"


# ----------------------------------------------------------------------------- airbench parts

def test_alternating_flips_mirror_each_image_every_other_epoch():
    from cnnlab.config import AugmentConfig
    from cnnlab.data.augment import BatchAugment

    aug = BatchAugment(AugmentConfig(hflip=0.5, flip_mode="alternate"))
    x = torch.arange(64 * 4, dtype=torch.float32).view(64, 1, 1, 4)  # each row distinct left-right
    index = torch.arange(64)
    gen = torch.Generator()
    flipped = [(aug(x, gen, index=index, epoch=e) != x).any(dim=(1, 2, 3)) for e in range(3)]
    assert torch.equal(flipped[0], ~flipped[1]) and torch.equal(flipped[0], flipped[2])
    assert 16 < int(flipped[0].sum()) < 48  # about half start flipped


def test_bias_lr_scale_reaches_the_1d_parameters(tmp_path):
    from cnnlab.train.optim import build_optimizer

    cfg = load_config(None, ["optim.name=sgd", "optim.bias_lr_scale=64", "optim.weight_decay=1e-3"])
    net = _bn_net()
    opt = build_optimizer(net, cfg.optim)
    scales = {id(p): g.get("lr_scale", 1.0) for g in opt.param_groups for p in g["params"]}
    for p in net.parameters():
        assert scales[id(p)] == (64.0 if p.ndim == 1 else 1.0)


def test_cifar10_speedrun_preset_runs_tiny_on_the_cpu(tmp_path, capsys):
    """The GPU recipe runs on a CPU (cut to a few images), saying once that it targets a GPU."""
    from cnnlab.data.datasets import ImageData

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), generator=gen, dtype=torch.uint8)
    y = torch.arange(64) % 10
    data = ImageData("tiny-cifar", x, y, x[:32], y[:32], [str(i) for i in range(10)], "memory")
    cfg = load_config("cifar10-speedrun", ["train.epochs=1", "data.batch_size=32", "model.widths=[8,16,16]",
                                           "train.device=cpu", "train.plots=false"])
    summary = train(cfg, tmp_path / "run", data=data)
    err = capsys.readouterr().err
    assert summary["status"] == "completed" and summary["test_accuracy"] is not None
    assert sum("no CUDA device" in line for line in err.splitlines()) == 1
    eff = summary["effective"]
    assert eff["whitening"]["filters"] == 24 and eff["whitening"]["mode"] == "frozen"
    assert eff["lr"] == pytest.approx(1.5 * 32 / 1024) and summary["tested_weights"] == "ema"


def test_interrupted_run_with_ema_and_lookahead_resumes_exactly(tmp_path):
    """Stopped after step 7 and resumed, a run with EMA and Lookahead ends with the same weights."""
    from cnnlab.train.callbacks import Callback

    class StopAt(Callback):
        def on_step_end(self, trainer, metrics):
            if trainer.step == 7:
                trainer._interrupted = True

    overrides = ("train.epochs=2", "train.ema=0.9", "train.lookahead=0.5", "train.lookahead_k=3",
                 "model.dropout=0.0")
    data = toy_data()
    train(toy_config(*overrides), tmp_path / "straight", data=data, quiet=True)
    first = train(toy_config(*overrides), tmp_path / "resumed", data=data, quiet=True, callbacks=[StopAt()])
    assert first["status"] == "interrupted"
    done = train(toy_config(*overrides), tmp_path / "resumed", data=data, quiet=True, resume=True)
    assert done["status"] == "completed" and done["tested_weights"] == "ema"
    a = torch.load(tmp_path / "straight" / "final.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "resumed" / "final.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_airbench_identity_init_makes_each_3x3_conv_pass_its_input_channels_through():
    from cnnlab.models.airbench import AirbenchNet

    torch.manual_seed(0)
    net = AirbenchNet(widths=[8, 16, 16])
    convs = [m for m in net.features.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 6
    for conv in convs:
        n = min(conv.in_channels, conv.out_channels)
        x = torch.randn(2, conv.in_channels, 5, 5)
        assert torch.allclose(conv(x)[:, :n], x[:, :n])  # filter i copies channel i
        if conv.out_channels > n:
            assert conv.weight[n:].abs().sum() > 0  # the rest keep their random init
    plain = AirbenchNet(widths=[8, 16, 16], identity_init=False)
    conv = [m for m in plain.features.modules() if isinstance(m, torch.nn.Conv2d)][2]
    assert not torch.allclose(conv(torch.ones(1, 8, 5, 5))[:, :8], torch.ones(1, 8, 5, 5))


def test_airbench_identity_init_must_be_a_flag():
    from cnnlab.errors import CnnlabError
    from cnnlab.models.airbench import AirbenchNet

    with pytest.raises(CnnlabError, match="identity_init"):
        AirbenchNet(widths=[8, 16, 16], identity_init="yes")
