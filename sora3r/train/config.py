"""Argparse bridge for the stage config dataclasses: one ``--flag`` per field (``--no-flag`` for booleans)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing


def _base_type(hint) -> tuple[type, bool]:
    """``(type, optional)`` of a field annotation such as ``int``, ``float | None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add one option per dataclass field, defaulting to the field's default."""
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind, _ = _base_type(hints[field.name])
        flag = "--" + field.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            parser.add_argument(flag, type=kind, default=field.default, metavar=kind.__name__.upper())


def config_from_args(config_cls: type, args: argparse.Namespace):
    """The dataclass filled from parsed arguments."""
    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})
