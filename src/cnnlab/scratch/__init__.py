"""Convolutional networks in NumPy, forward and backward written by hand (no autograd).

Every layer is checked against central finite differences and against
PyTorch autograd (see ``tests/scratch``).

>>> import numpy as np
>>> from cnnlab.scratch import Conv2d, MaxPool2d, ReLU, Flatten, Dense, Sequential, SoftmaxCrossEntropy
>>> net = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Dense(4 * 14 * 14, 10))
>>> x = np.zeros((2, 1, 28, 28), np.float32)
>>> loss = SoftmaxCrossEntropy()
>>> value = loss(net(x), np.array([3, 7]))
>>> net.backward(loss.backward()).shape
(2, 1, 28, 28)
"""

from cnnlab.scratch.algorithms import ALGORITHMS, get_algorithm
from cnnlab.scratch.conv import (
    Conv2d,
    DepthwiseConv2d,
    DepthwiseSeparableConv2d,
    SpatiallySeparableConv2d,
    decompose_kernel,
    separable_cost,
)
from cnnlab.geometry import output_size
from cnnlab.scratch.layers import BatchNorm, Dense, DropConnectDense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from cnnlab.scratch.loss import SoftmaxCrossEntropy
from cnnlab.scratch.module import Layer, Param
from cnnlab.scratch.optim import SGD, Adam
from cnnlab.scratch.pooling import AvgPool2d, GlobalAvgPool, GlobalMaxPool, MaxPool2d
from cnnlab.scratch.sequential import Sequential

__all__ = [
    "ALGORITHMS", "Adam", "AvgPool2d", "BatchNorm", "Conv2d", "Dense", "DepthwiseConv2d", "DepthwiseSeparableConv2d",
    "DropConnectDense", "Dropout", "Flatten", "GlobalAvgPool", "GlobalMaxPool", "Layer", "LeakyReLU", "MaxPool2d",
    "Param", "ReLU", "SGD", "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "SpatiallySeparableConv2d", "Tanh",
    "decompose_kernel", "get_algorithm", "output_size", "separable_cost",
]
