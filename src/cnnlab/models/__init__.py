"""Models: a registry of CNN families sharing one interface (features + head).

>>> from cnnlab.models import create_model
>>> net = create_model("convnet", in_channels=1, num_classes=10, filters=[16, 32])
"""

from cnnlab.models.base import ImageClassifier
from cnnlab.models.factory import create_model
from cnnlab.models.registry import list_models, model_arguments, register_model

__all__ = ["ImageClassifier", "create_model", "list_models", "model_arguments", "register_model"]
