"""``cnnlab presets``: list the shipped recipes, or print one."""

from __future__ import annotations

from cnnlab.commands.common import print_json

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use


def register(subparsers) -> None:
    p = subparsers.add_parser("presets", help="list the shipped training presets, or show one",
                              description="Without a name: one line per preset. With a name: its YAML.")
    p.add_argument("name", nargs="?", help="a preset to print in full")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    import yaml

    from cnnlab.config import preset_names, preset_text

    if args.name:
        text = preset_text(args.name)
        if args.json:
            print_json(yaml.safe_load(text))
        else:
            print(text, end="")
        return 0
    rows = {}
    for name in preset_names():
        raw = yaml.safe_load(preset_text(name)) or {}
        rows[name] = {"model": (raw.get("model") or {}).get("name"), "data": (raw.get("data") or {}).get("name"),
                      "description": " ".join(str(raw.get("description", "")).split())}
    if args.json:
        print_json(rows)
        return 0
    width = max(map(len, rows)) + 2
    for name, row in rows.items():
        print(f"{name:<{width}}{row['data'] or '':<16}{row['model'] or '':<16}{row['description'][:90]}")
    return 0
