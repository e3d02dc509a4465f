"""Transfer learning and deployment.

* :mod:`~cnnlab.transfer.pretrained` -- images prepared as ImageNet-pretrained weights expect
  them, and a pretrained name read as a run. Reading weights (a torchvision ``.pth``, a
  ``.safetensors`` file, a run directory, the published ``ARCH.TAG`` ones) is part of building a
  model: :mod:`cnnlab.models.weights` and :mod:`cnnlab.models.pretrained`.
* :mod:`~cnnlab.transfer.freeze` -- freezing all but the last k stages or by name
  pattern (frozen batch norm stays in eval mode), gradual unfreezing.
* :mod:`~cnnlab.transfer.features` -- a frozen backbone's features computed once and
  memory-mapped from disk, keyed by weights, data and transform.
* :mod:`~cnnlab.transfer.export` -- ONNX and TorchScript with the preprocessing folded
  in, parity checked through ONNX Runtime; :mod:`~cnnlab.transfer.onnx_predict`
  classifies with ONNX Runtime alone (no torch import).

Nothing here is imported by ``import cnnlab``; each command imports what it needs.
"""
