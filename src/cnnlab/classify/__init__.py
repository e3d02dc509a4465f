"""Image classification, the default task: :class:`cnnlab.classify.task.ClassifyTask` (registered as ``classify``)."""
