"""Search spaces for `rnnkit sweep`: a JSON or TOML file of option -> distribution, checked here.

    {"lr": {"loguniform": [0.001, 0.01]}, "cell": {"choice": ["lstm", "gru"]},
     "hidden": {"int": [16, 64]}, "clip": {"uniform": [1, 5]}}

Keys are the long options of the task's `train` command without the dashes (`seq_len` or `seq-len`
for `--seq-len`); each value has exactly one of the kinds below. `int` bounds are inclusive.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError

# kind -> (tune sampler, check of its argument)
KINDS = {
    "choice": ("choice", lambda a: isinstance(a, list) and len(a) > 0),
    "uniform": ("uniform", lambda a: _bounds(a, (int, float))),
    "loguniform": ("loguniform", lambda a: _bounds(a, (int, float)) and a[0] > 0),
    "int": ("randint", lambda a: _bounds(a, (int,))),
}


def _bounds(a, types) -> bool:
    return (isinstance(a, list) and len(a) == 2 and all(isinstance(v, types) and not isinstance(v, bool)
                                                        for v in a) and a[0] < a[1])


def check_space(space) -> dict:
    """The space as {option: (kind, argument)}; anything malformed raises UserError naming the entry."""
    if not isinstance(space, dict) or not space:
        raise UserError("the search space must be a non-empty table of option -> distribution")
    out = {}
    for name, spec in space.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise UserError(f"search space entry {name!r} must be one of {{kind: argument}} with kind in "
                            f"{list(KINDS)}, got {spec!r}")
        kind, arg = next(iter(spec.items()))
        if not KINDS[kind][1](arg):
            hint = "a non-empty list" if kind == "choice" else "[low, high] with low < high" + (
                ", integers" if kind == "int" else "") + (", low > 0" if kind == "loguniform" else "")
            raise UserError(f"search space entry {name!r}: {kind} needs {hint}, got {arg!r}")
        out[name.replace("_", "-")] = (kind, arg)
    return out


def load_space(path) -> dict:
    """Read a .json or .toml search space file; returns `check_space` of it."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"search space file {str(path)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise UserError(f"search space {str(path)!r}: use a .json or .toml file")
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise UserError(f"search space {str(path)!r} cannot be parsed: {e}") from None
    return check_space(data)


def to_tune(space: dict) -> dict:
    """The checked space as Ray Tune samplers (int upper bounds made inclusive)."""
    from ray import tune

    def sampler(kind, arg):
        fn = getattr(tune, KINDS[kind][0])
        if kind == "choice":
            return fn(arg)
        return fn(arg[0], arg[1] + 1) if kind == "int" else fn(arg[0], arg[1])

    return {name: sampler(kind, arg) for name, (kind, arg) in space.items()}


def as_options(config: dict) -> list[str]:
    """A trial's configuration as command-line options: {"lr": 0.01} -> ["--lr", "0.01"]."""
    argv = []
    for name, value in config.items():
        argv += [f"--{name}", repr(value) if isinstance(value, float) else str(value)]
    return argv
