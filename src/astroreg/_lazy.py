"""Packages whose members are imported on first use (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_members(package: str, where: Mapping[str, str]) -> tuple[list[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for a package that imports each member on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : mapping of str to str
        Member name -> module that defines it.

    Returns
    -------
    tuple
        ``(__all__, __getattr__, __dir__)``, to assign in the package's ``__init__``.
    """
    names = dict(where)

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(importlib.import_module(package), name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(names))

    return sorted(names), __getattr__, __dir__
