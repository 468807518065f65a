"""``python -m examples`` lists the examples; ``python -m examples NAME [options]`` runs one.

Options every example takes: --device cpu|cuda, --epochs N, --quick, --plot PATH, --seed S
(and its own, listed by ``python -m examples NAME --help``).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys

import examples


def available() -> dict:
    """Example name -> its one-line description."""
    found = {}
    for module in pkgutil.iter_modules(examples.__path__):
        if not module.name.startswith("_"):
            doc = importlib.import_module(f"examples.{module.name}").__doc__ or ""
            found[module.name] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if not argv or argv[0] in ("-h", "--help", "list"):
        width = max(map(len, names), default=0)
        print("minigrad examples (python -m examples NAME [--quick] [--device cuda] [--plot out.png]):\n")
        for name, doc in sorted(names.items()):
            print(f"  {name:<{width}}  {doc}")
        return
    name, rest = argv[0], argv[1:]
    if name not in names:
        raise SystemExit(f"unknown example {name!r}; `python -m examples` lists them")
    missing = [package for package in ("tqdm", "matplotlib") if importlib.util.find_spec(package) is None]
    if missing:
        raise SystemExit(
            f"examples: {', '.join(missing)} not installed; the examples need the examples extra: "
            'pip install -e ".[examples]"'
        )
    importlib.import_module(f"examples.{name}").main(rest)


if __name__ == "__main__":
    main()
