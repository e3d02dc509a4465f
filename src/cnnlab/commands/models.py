"""``cnnlab models``: list registered models and their options."""

from __future__ import annotations

import inspect

from cnnlab.commands.common import print_json

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


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
        if args.name:
            rows[name]["stages"] = _stages(name)
    if args.json:
        print_json(rows)
        return 0
    width = max(16, *(len(n) + 2 for n in rows))
    for name, row in rows.items():
        print(f"{name:<{width}}{row['summary']}")
        if args.name:
            for key, default in row["options"].items():
                print(f"    {key} = {default!r}")
            if row.get("stages"):
                # model.freeze_k=K trains the last K feature stages and the head; optim.layer_decay counts them too
                print("  stages (model.freeze_k counts feature stages from the end; the head always trains):")
                for stage in row["stages"]:
                    print(f"    {stage['name']:<20}{stage['params']:>12,} parameters")
    return 0


def _stages(name: str) -> list[dict]:
    """The model's stages with its default options, built on the meta device (no memory, no init cost)."""
    import torch

    from cnnlab.models import create_model
    from cnnlab.models.stages import model_stages

    try:
        with torch.device("meta"):
            model = create_model(name)
    except Exception:  # noqa: BLE001 -- a model that needs options to build: no stage list, the options still show
        return []
    return [{"name": n, "params": sum(p.numel() for p in m.parameters())} for n, m in model_stages(model)]
