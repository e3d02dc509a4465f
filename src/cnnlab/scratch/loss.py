"""Softmax cross-entropy with its gradient.

>>> import numpy as np
>>> loss = SoftmaxCrossEntropy()
>>> round(float(loss(np.zeros((2, 4)), np.array([0, 3]))), 4)   # uniform over 4 classes: ln 4
1.3863
>>> loss.backward()[0]                                          # softmax - one-hot, / batch
array([-0.375,  0.125,  0.125,  0.125])
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """Mean over the batch of −log softmax(logits)[label]; ``backward()`` gives d loss / d logits."""

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> float:
        if logits.ndim != 2 or labels.shape != (logits.shape[0],):
            raise CnnlabError(f"expected logits (N, classes) and labels (N,), got {logits.shape} and {labels.shape}")
        if labels.min() < 0 or labels.max() >= logits.shape[1]:
            raise CnnlabError(f"labels must be in [0, {logits.shape[1]}), got range [{labels.min()}, {labels.max()}]")
        logp = log_softmax(logits)  # (N, classes)
        self._probs, self._labels = np.exp(logp), labels
        return float(-logp[np.arange(len(labels)), labels].mean())

    def backward(self) -> np.ndarray:
        grad = self._probs.copy()
        grad[np.arange(len(self._labels)), self._labels] -= 1.0
        return grad / len(self._labels)
