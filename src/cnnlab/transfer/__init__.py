"""Transfer learning and deployment.

* :mod:`~cnnlab.transfer.weights` -- weights from a torchvision ``.pth`` state dict, a
  ``.safetensors`` file or a cnnlab run directory, never unpickling an object, with a
  report of how the keys matched.
* :mod:`~cnnlab.transfer.freeze` -- freezing all but the last k stages or by name
  pattern (frozen batch norm stays in eval mode), gradual unfreezing.
* :mod:`~cnnlab.transfer.features` -- a frozen backbone's features computed once and
  memory-mapped from disk, keyed by weights, data and transform.
* :mod:`~cnnlab.transfer.export` -- ONNX and TorchScript with the preprocessing folded
  in, parity checked through ONNX Runtime; :mod:`~cnnlab.transfer.onnx_predict`
  classifies with ONNX Runtime alone (no torch import).

Nothing here is imported by ``import cnnlab``; each command imports what it needs.
"""
