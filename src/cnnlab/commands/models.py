"""``cnnlab models``: list registered models and their options."""

from __future__ import annotations

import inspect

from cnnlab.commands.common import print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the registered models and their options",
                              description="Every model here can be named in a config (model.name=...) and "
                                          "its options set as model.<option>=value.")
    p.add_argument("name", nargs="?", help="show one model's options and defaults")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.models import list_models, model_arguments
    from cnnlab.models.registry import get_model_constructor

    names = [args.name] if args.name else list_models()
    rows = {}
    for name in names:
        constructor = get_model_constructor(name)
        doc = inspect.getdoc(constructor) or ""
        options = {k: (None if v is inspect.Parameter.empty else v) for k, v in model_arguments(name).items()}
        rows[name] = {"summary": doc.splitlines()[0] if doc else "", "options": options}
    if args.json:
        print_json(rows)
        return 0
    for name, row in rows.items():
        print(f"{name:<16}{row['summary']}")
        if args.name:
            for key, default in row["options"].items():
                print(f"    {key} = {default!r}")
    return 0
