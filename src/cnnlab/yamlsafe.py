"""Size limits for parsed YAML (configs, sweep specs, run files): a document that expands absurdly is one line.

Low in the layering on purpose: the config, the run readers and the sweep specs all use it.
"""

from __future__ import annotations

from typing import Any

from cnnlab.errors import CnnlabError

# A parsed YAML document larger than this (counting every node an alias repeats) or nested deeper
# is refused: a config is a few hundred nodes, while 9 aliases per level for 9 levels ("billion
# laughs") expand to 387 million.
MAX_YAML_NODES = 10_000
MAX_YAML_DEPTH = 32


def check_yaml_size(value: Any, source: str) -> None:
    """Refuse a parsed document of more than MAX_YAML_NODES nodes (aliases counted as expanded)
    or nested deeper than MAX_YAML_DEPTH; stops counting at the cap, so a bomb costs nothing."""
    stack, nodes = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_YAML_NODES:
            raise CnnlabError(f"{source} expands to more than {MAX_YAML_NODES:,} values (YAML aliases "
                              "repeating aliases?); a config is far smaller")
        if depth > MAX_YAML_DEPTH:
            raise CnnlabError(f"{source} nests deeper than {MAX_YAML_DEPTH} levels; a config is far shallower")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)


def cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
