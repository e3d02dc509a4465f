"""Sub-commands of the ``cnnlab`` CLI, one module each (see ``cnnlab.cli``)."""
