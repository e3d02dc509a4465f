"""Callback state in last.pt is keyed by state_key: a resume may add or remove a callback (issue 19)."""

from __future__ import annotations

import pytest

from cnnlab.train.callbacks import Callback, callback_states, restore_callback_states
from cnnlab.errors import CnnlabError
from tests.train.helpers import toy_config, toy_data
from tests.train.test_mixing import CtrlCAtStep


class Counter(Callback):
    def __init__(self, key: str = "Counter") -> None:
        self.key, self.n = key, 0

    @property
    def state_key(self) -> str:
        return self.key

    def on_step_end(self, trainer, metrics) -> None:
        self.n += 1

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state) -> None:
        self.n = state["n"]


def test_states_go_back_by_key_whatever_the_order_and_new_ones_start_fresh():
    a, b = Counter("a"), Counter("b")
    a.n, b.n = 3, 5
    saved = callback_states([a, b])
    assert saved == {"a": {"n": 3}, "b": {"n": 5}}
    c, fresh, b2 = Counter("c"), Counter("fresh"), Counter("b")
    notes = []
    restore_callback_states([fresh, b2, c], saved, notes.append)
    assert (b2.n, fresh.n, c.n) == (5, 0, 0)
    assert notes == ["resuming without a (in last.pt, not in this run): its state is dropped"]
    with pytest.raises(CnnlabError, match="two callbacks keep their state under 'a'"):
        callback_states([a, Counter("a")])


@pytest.mark.parametrize("before, after", [(["train.ema=0.9"], ["train.ema=0.9", "train.lookahead=0.5"]),
                                           (["train.ema=0.9", "train.lookahead=0.5"], ["train.lookahead=0.5"])])
def test_resuming_with_a_callback_added_or_removed_works(tmp_path, before, after, capsys):
    """The bug of the positional restore: EMA's state was handed to Lookahead (issue 19)."""
    from cnnlab.train.run import train

    data = toy_data()
    part = train(toy_config(*before), tmp_path / "run", data=data, quiet=True, callbacks=[CtrlCAtStep(5)])
    assert part["status"] == "interrupted"
    done = train(toy_config(*after), tmp_path / "run", data=data, resume=True)
    assert done["status"] == "completed" and done["test_accuracy"] is not None
    assert done["effective"]["lookahead"] == (0.5 if "train.lookahead=0.5" in after else None)
