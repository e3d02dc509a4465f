"""Training options checked by their effect inside the loop, not only by a run that completes:
clipping bounds the gradients the optimizer applies, bf16 autocast makes bf16 logits,
channels_last keeps weights and activations in that memory format."""

import pytest
import torch
from torch import nn

from cnnlab.train.callbacks import Callback
from cnnlab.train.run import train
from tests.train.helpers import toy_config, toy_data


class AppliedGradients(Callback):
    """Records, just before every optimizer step (after clipping), the gradients' total norm and largest entry."""

    def __init__(self):
        self.norms, self.largest, self.logged_norms = [], [], []

    def on_train_start(self, trainer):
        def before_step(optimizer, args, kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
            self.largest.append(max(float(g.abs().max()) for g in grads))

        self.handle = trainer.optimizer.register_step_pre_hook(before_step)

    def on_step_end(self, trainer, metrics):
        if metrics is not None:
            self.logged_norms.append(metrics["grad_norm"])

    def on_train_end(self, trainer):
        self.handle.remove()


def applied_gradients(tmp_path, name, *overrides):
    probe = AppliedGradients()
    cfg = toy_config("optim.name=sgd", "optim.lr=0.1", "train.epochs=1", "train.log_every=1", *overrides)
    summary = train(cfg, tmp_path / name, data=toy_data(), quiet=True, callbacks=[probe])
    assert summary["status"] == "completed" and len(probe.norms) == summary["steps"] > 0
    return probe


def test_clipping_bounds_the_gradients_the_optimizer_applies(tmp_path):
    free = applied_gradients(tmp_path, "free")
    assert max(free.norms) > 0.05 and max(free.largest) > 0.002  # unclipped gradients exceed both bounds below
    by_norm = applied_gradients(tmp_path, "norm", "train.clip_norm=0.05")
    assert max(by_norm.norms) <= 0.05 * (1 + 1e-4)
    assert max(by_norm.logged_norms) > 0.05  # the logged grad_norm is the norm before clipping
    by_value = applied_gradients(tmp_path, "value", "train.clip_value=0.002")
    assert max(by_value.largest) <= 0.002 * (1 + 1e-6)
    both = applied_gradients(tmp_path, "both", "train.clip_value=0.002", "train.clip_norm=0.01")
    assert max(both.largest) <= 0.002 * (1 + 1e-6) and max(both.norms) <= 0.01 * (1 + 1e-4)


class ForwardProbe(Callback):
    """During training forwards: the logits' dtype, and the memory format of conv weights and outputs."""

    def __init__(self):
        self.logit_dtypes, self.conv_outputs_channels_last, self.conv_weights_channels_last = set(), set(), set()

    def on_train_start(self, trainer):
        model = trainer.model

        def logits(module, args, output):
            if module.training:
                self.logit_dtypes.add(output.dtype)

        def conv(module, args, output):
            if module.training and module.in_channels > 1:  # (O, 1, k, k) is both formats at once
                self.conv_weights_channels_last.add(module.weight.is_contiguous(memory_format=torch.channels_last))
                self.conv_outputs_channels_last.add(output.is_contiguous(memory_format=torch.channels_last))

        self.handles = [model.register_forward_hook(logits)]
        self.handles += [m.register_forward_hook(conv) for m in model.modules() if isinstance(m, nn.Conv2d)]

    def on_train_end(self, trainer):
        for handle in self.handles:
            handle.remove()


def forward_probe(tmp_path, name, *overrides):
    probe = ForwardProbe()
    summary = train(toy_config("train.epochs=1", *overrides), tmp_path / name, data=toy_data(), quiet=True,
                    callbacks=[probe])
    assert summary["status"] == "completed" and summary["test_accuracy"] is not None
    return probe


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_bf16_autocast_makes_bf16_logits(tmp_path, precision, dtype):
    assert forward_probe(tmp_path, precision, f"train.precision={precision}").logit_dtypes == {dtype}


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_weights_and_activations(tmp_path, channels_last):
    probe = forward_probe(tmp_path, str(channels_last), f"train.channels_last={str(channels_last).lower()}")
    assert probe.conv_weights_channels_last == {channels_last}
    assert probe.conv_outputs_channels_last == {channels_last}


class FirstStep(Callback):
    """The parameters before the first optimizer step, the gradients it applied, and the parameters after."""

    def on_train_start(self, trainer):
        self.named = dict(trainer.model.named_parameters())
        self.before = {k: p.detach().clone() for k, p in self.named.items()}
        self.grads = self.after = None

        def pre(optimizer, args, kwargs):
            if self.grads is None:
                self.grads = {k: p.grad.detach().clone() for k, p in self.named.items()}

        def post(optimizer, args, kwargs):
            if self.after is None:
                self.after = {k: p.detach().clone() for k, p in self.named.items()}

        self.handles = [trainer.optimizer.register_step_pre_hook(pre), trainer.optimizer.register_step_post_hook(post)]

    def on_train_end(self, trainer):
        for handle in self.handles:
            handle.remove()


# Each optimizer as torch builds it from the same hyperparameters, written out here rather than read
# from cnnlab's mapping; weight decay applies to conv/linear weights only (cnnlab's default grouping).
TORCH_OPTIMIZERS = {
    "sgd": (["optim.name=sgd", "optim.momentum=0.5"], lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.5)),
    "sgd_nesterov": (["optim.name=sgd", "optim.momentum=0.5", "optim.nesterov=true"],
                     lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.5, nesterov=True)),
    "adam": (["optim.name=adam", "optim.betas=[0.8,0.99]", "optim.eps=1e-3", "optim.amsgrad=true"],
             lambda g: torch.optim.Adam(g, lr=0.05, betas=(0.8, 0.99), eps=1e-3, amsgrad=True)),
    "adamw": (["optim.name=adamw", "optim.betas=[0.8,0.99]", "optim.eps=1e-3"],
              lambda g: torch.optim.AdamW(g, lr=0.05, betas=(0.8, 0.99), eps=1e-3)),
    "rmsprop": (["optim.name=rmsprop", "optim.alpha=0.9", "optim.eps=1e-3", "optim.momentum=0.5"],
                lambda g: torch.optim.RMSprop(g, lr=0.05, alpha=0.9, eps=1e-3, momentum=0.5)),
}


@pytest.mark.parametrize("name", TORCH_OPTIMIZERS)
def test_first_training_step_equals_torchs_optimizer(tmp_path, name):
    overrides, make_reference = TORCH_OPTIMIZERS[name]
    probe = FirstStep()
    cfg = toy_config(*overrides, "optim.lr=0.05", "optim.weight_decay=0.5", "schedule.name=constant",
                     "train.epochs=1")
    train(cfg, tmp_path / name, data=toy_data(), quiet=True, callbacks=[probe])
    params = {k: nn.Parameter(v.clone()) for k, v in probe.before.items()}
    for k, p in params.items():
        p.grad = probe.grads[k]
    decay = [p for p in params.values() if p.ndim > 1]
    no_decay = [p for p in params.values() if p.ndim <= 1]
    assert decay and no_decay  # the toy model has both kinds
    make_reference([{"params": decay, "weight_decay": 0.5}, {"params": no_decay, "weight_decay": 0.0}]).step()
    for k, p in params.items():
        torch.testing.assert_close(probe.after[k], p.detach(), rtol=1e-6, atol=1e-7, msg=k)
