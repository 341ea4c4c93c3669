"""Argparse bridge for the stage config dataclasses: one ``--flag`` per field (``--no-flag`` for booleans).

A field's help text comes from the config classes themselves, so it is written once: a trailing comment on the
field's line (``lr: float = 2e-4  # peak learning rate``) or, in the class docstring, a sentence that starts with
the field name in double backquotes (````init``: a diffusers VAE folder to continue from.``).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing

# "``name``: text" or "``a`` / ``b``: text" in a docstring, up to the end of that sentence.
_DOCSTRING_ENTRY = re.compile(r"((?:``\w+``(?:\s*/\s*)?)+):\s+(.+?\.)(?=\s|$)", re.DOTALL)


def _comment_help(config_cls: type) -> dict[str, str]:
    """``{field: trailing comment}`` of the fields declared in the body of ``config_cls``."""
    try:
        source = textwrap.dedent(inspect.getsource(config_cls))
    except (OSError, TypeError):  # no source (e.g. a class made at run time)
        return {}
    helps, line_field = {}, {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and token.start[1] == 4 and token.start[0] not in line_field:
            line_field[token.start[0]] = token.string
        elif token.type == tokenize.COMMENT and token.start[0] in line_field:
            helps[line_field[token.start[0]]] = token.string.lstrip("#").strip()
    return helps


def _docstring_help(config_cls: type) -> dict[str, str]:
    """``{field: sentence}`` from the "``field``: sentence" entries of the class docstring."""
    doc = " ".join((inspect.getdoc(config_cls) or "").split())
    helps = {}
    for names, text in _DOCSTRING_ENTRY.findall(doc):
        for name in re.findall(r"``(\w+)``", names):
            helps[name] = text.replace("``", "")
    return helps


def field_help(config_cls: type) -> dict[str, str]:
    """Help text of each documented field of the dataclass ``config_cls`` and its bases (subclasses win)."""
    helps: dict[str, str] = {}
    for cls in reversed(config_cls.__mro__[:-1]):
        helps.update(_docstring_help(cls))
        helps.update(_comment_help(cls))
    field_names = {field.name for field in dataclasses.fields(config_cls)}
    return {name: text for name, text in helps.items() if name in field_names}


def _base_type(hint) -> tuple[type, bool]:
    """``(type, optional)`` of a field annotation such as ``int``, ``float | None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add one option per dataclass field, defaulting to the field's default, with its `field_help` text."""
    hints = typing.get_type_hints(config_cls)
    helps = field_help(config_cls)
    for field in dataclasses.fields(config_cls):
        kind, _ = _base_type(hints[field.name])
        flag = "--" + field.name.replace("_", "-")
        text = helps.get(field.name, "").replace("%", "%%")  # argparse %-formats help strings
        if field.default is not None:
            text = f"{text} (default: {field.default})".lstrip()
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, help=text)
        else:
            parser.add_argument(flag, type=kind, default=field.default, metavar=kind.__name__.upper(), help=text)


def config_from_args(config_cls: type, args: argparse.Namespace):
    """The dataclass filled from parsed arguments."""
    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})
