"""What a model costs: parameters, multiply-accumulates, FLOPs, activation memory, latency.

>>> from cnnlab.models import create_model
>>> from cnnlab.profile import profile_model
>>> prof = profile_model(create_model("resnet18", num_classes=1000, variant="imagenet"), (3, 224, 224))
>>> prof.params, prof.macs                       # the published ResNet-18
(11689512, 1814073344)
>>> [r.name for r in prof.rows][:2]
['features.stem.conv', 'features.stem.bn']

Convention: 1 MAC = 2 FLOPs; only convolution and linear layers are counted
(as in published counts and ``torch.utils.flop_counter``).
"""

from cnnlab.profile.profiler import CONVENTIONS, LayerRow, Profile, profile_model, smallest_square_input
from cnnlab.profile.timing import Timing, time_model

__all__ = ["CONVENTIONS", "LayerRow", "Profile", "Timing", "profile_model", "smallest_square_input", "time_model"]
