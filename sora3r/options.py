"""Typed options: what a config field accepts, declared on the field and checked the same way from the command line
and from Python.

Every command and training stage is a dataclass whose fields are its options (`sora3r.cli` turns them into
``--flags`` with tyro). A field states the values it accepts in its annotation, and the config's ``__post_init__``
calls :func:`check_fields`, so a bad value is refused when the config is made, before any work:

- ``Literal[...]``: one of these values (the choices the command line offers);
- ``annotated_types`` bounds inside ``Annotated[...]``: ``Ge``, ``Gt``, ``Le``, ``Lt``, ``Interval``, ``MultipleOf``,
  ``MinLen``;
- ``float``: finite (no NaN, no infinity);
- ``X | None``: ``None`` or a valid ``X``; ``tuple[X, ...]``: every item a valid ``X``.

Errors are ``ValueError("--flag VALUE: what is wrong")``, naming the option as the command line spells it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types as at

Count = Annotated[int, at.Ge(1)]
"""A number of things or steps: 1 or more."""
NonNegative = Annotated[int, at.Ge(0)]
Seed = Annotated[int, at.Interval(ge=0, le=2**32 - 1)]
"""A random seed: what every seeded library takes (NumPy's legacy seeding stops at 2**32 - 1)."""


def option_name(field_name: str) -> str:
    """``num_frames`` -> ``--num-frames``."""
    return "--" + field_name.replace("_", "-")


def _shown(value: Any) -> str:
    """A value as it was typed: ``0 0 400 250`` for a tuple of floats."""
    if isinstance(value, (tuple, list)):
        return " ".join(map(_shown, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def invalid(field_name: str, value: Any, problem: str) -> ValueError:
    """The error for a bad value of an option: ``--flag VALUE: problem``."""
    return ValueError(" ".join([option_name(field_name), _shown(value)]).rstrip() + f": {problem}")


def _bound_problem(constraint: Any, value: Any) -> str | None:
    """What ``value`` breaks of one ``annotated_types`` constraint, or ``None``."""
    if isinstance(constraint, at.Gt) and not value > constraint.gt:
        return f"must be greater than {constraint.gt}"
    if isinstance(constraint, at.Ge) and not value >= constraint.ge:
        return f"must be at least {constraint.ge}"
    if isinstance(constraint, at.Lt) and not value < constraint.lt:
        return f"must be less than {constraint.lt}"
    if isinstance(constraint, at.Le) and not value <= constraint.le:
        return f"must be at most {constraint.le}"
    if isinstance(constraint, at.MultipleOf) and value % constraint.multiple_of != 0:
        return f"must be a multiple of {constraint.multiple_of}"
    if isinstance(constraint, at.MinLen) and len(value) < constraint.min_length:
        return f"needs at least {constraint.min_length} value" + ("s" if constraint.min_length > 1 else "")
    return None


def value_problem(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the annotation ``hint`` (see the module docstring), or ``None`` when it fits."""
    constraints: list = []
    while typing.get_origin(hint) is Annotated:
        hint, *metadata = typing.get_args(hint)
        for item in metadata:
            constraints.extend(item if isinstance(item, at.GroupedMetadata) else [item])
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None if type(None) in args else "a value is required"
        members = [arg for arg in args if arg is not type(None)]
        problem = value_problem(members[0], value) if len(members) == 1 else None
    elif origin is Literal:
        problem = None if value in args else f"must be one of {', '.join(map(str, args))}"
    elif origin is tuple and args:
        items = args[:1] * len(value) if args[-1:] == (Ellipsis,) else args
        problem = next(filter(None, (value_problem(item, v) for item, v in zip(items, value))), None)
    elif hint is float and isinstance(value, (int, float)) and not math.isfinite(value):
        problem = "must be a finite number"
    else:
        problem = None
    return problem or next(filter(None, (_bound_problem(c, value) for c in constraints)), None)


def check_fields(config: Any) -> None:
    """Raise ``ValueError("--flag VALUE: problem")`` for the first field of the dataclass ``config`` whose value does
    not fit its annotation."""
    hints = typing.get_type_hints(type(config), include_extras=True)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        problem = value_problem(hints[field.name], value)
        if problem:
            raise invalid(field.name, value, problem)


def check_device(device: str) -> None:
    """Raise ``ValueError`` unless ``device`` names a torch device this machine has (``cpu``, ``cuda``, ``cuda:1``,
    ``mps``, ...)."""
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise invalid("device", device, "not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if parsed.type == "cpu":
        return
    backend = getattr(torch, parsed.type, None)
    available = backend is not None and getattr(backend, "is_available", lambda: False)()
    if not available:
        raise invalid("device", device, f"no {parsed.type} device here (torch {torch.__version__} sees none)")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if parsed.index is not None and parsed.index >= count:
        raise invalid("device", device, f"this machine has {count} {parsed.type} device(s), numbered from 0")


def check_model_folder(field_name: str, path: str | Path) -> None:
    """Raise ``FileNotFoundError`` unless ``path`` is a folder holding a diffusers ``config.json`` (a model) or
    ``model_index.json`` (a pipeline, such as a sora3r model folder)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{option_name(field_name)} {path}: no such folder")
    if not any((path / name).is_file() for name in ("config.json", "model_index.json")):
        raise FileNotFoundError(f"{option_name(field_name)} {path}: not a model folder (no config.json or "
                                "model_index.json in it)")
