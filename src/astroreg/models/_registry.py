"""Registry of network builders: ``register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

_BUILDERS: dict[str, ModelEntry] = {}


@dataclass(frozen=True)
class ModelEntry:
    """A registered network builder."""

    name: str
    builder: Callable[..., nn.Module]
    input_kind: str
    description: str

    def parameters(self) -> dict[str, object]:
        """The builder's keyword parameters and their defaults."""
        sig = inspect.signature(self.builder)
        return {
            k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in ("input_shape", "n_outputs")
        }


def register_model(name: str | None = None, *, input_kind: str, description: str = ""):
    """Register a network builder under ``name`` (default: the function's name).

    The builder takes keyword-only arguments ``input_shape`` (per-object shape,
    e.g. ``(bands, H, W)`` or ``(n_features,)``), ``n_outputs`` and its own
    hyper-parameters, and returns a plain :class:`torch.nn.Module`.

    Parameters
    ----------
    name : str, optional
        Registry name; defaults to the decorated function's name.
    input_kind : {"images", "spectra", "tabular"}
        The modality the network consumes.
    description : str
        One line shown by ``astroreg models``.

    Examples
    --------
    >>> @register_model(input_kind="tabular", description="tiny MLP")  # doctest: +SKIP
    ... def tiny(*, input_shape, n_outputs, width=8):
    ...     return nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU(), nn.Linear(width, n_outputs))
    """

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _BUILDERS:
            raise ValueError(f"model {key!r} is already registered")
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        _BUILDERS[key] = ModelEntry(key, fn, input_kind, doc)
        return fn

    return deco


def list_models(input_kind: str | None = None) -> list[str]:
    """Sorted names of the registered networks, optionally for one input modality."""
    return sorted(k for k, e in _BUILDERS.items() if input_kind in (None, e.input_kind))


def get_model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` registered under ``name``."""
    try:
        return _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {list_models()}") from None


def create_model(name: str, *, input_shape: tuple[int, ...], n_outputs: int, **params) -> nn.Module:
    """Build the registered network ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    input_shape : tuple of int
        Per-object input shape, e.g. ``(1, 143, 143)`` for one-band 143x143 stamps.
    n_outputs : int
        Number of regression outputs.
    **params
        The builder's hyper-parameters; unknown ones raise with the allowed names.

    Returns
    -------
    torch.nn.Module
    """
    entry = get_model_entry(name)
    allowed = entry.parameters()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"model {name!r} has no parameter(s) {unknown}; allowed: {sorted(allowed)}")
    return entry.builder(input_shape=tuple(input_shape), n_outputs=int(n_outputs), **params)
