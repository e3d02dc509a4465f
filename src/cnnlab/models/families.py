"""Imports every model family module so that each registers its models.

Add a new family by creating ``models/<family>.py`` and importing it here.
"""

from cnnlab.models import simple  # noqa: F401
from cnnlab.models import convnet  # noqa: F401
from cnnlab.models import resnet9  # noqa: F401
from cnnlab.models import resnet  # noqa: F401
from cnnlab.models import mobilenet  # noqa: F401
from cnnlab.models import vgg  # noqa: F401
from cnnlab.models import inception  # noqa: F401
from cnnlab.models import airbench  # noqa: F401
from cnnlab.models import efficientnet_lite  # noqa: F401
