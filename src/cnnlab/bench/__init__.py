"""Benchmarks behind ``cnnlab bench``: each module here with ``register(subparsers)``
is one ``cnnlab bench <name>`` sub-command (``train``, ``conv``, ...).

Every benchmark prints a table, writes JSON under ``benchmarks/results/`` and
compares against a baseline measured in the same run.
"""
