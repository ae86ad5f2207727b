"""Model files (``model.pt``): a network's definition and weights, read without running code.

A file holds plain data and tensors only::

    {"model": "paper_cnn",                      # registered network name
     "params": {"dropout": 0.2},                # its hyper-parameters
     "input_shapes": {"image": (1, 143, 143)},  # per-object shape of each named input
     "input_kinds": {"image": "images"},        # kind of each input
     "n_outputs": 1,
     "state_dict": {...}}                       # weights of the dict-taking module

It is read with ``torch.load(weights_only=True)`` and checked before any network is
built. Files written before inputs had names (``"input_shape"``: one unnamed input,
weights without the :class:`~astroreg.models.SingleInput` adapter's ``inner.`` prefix)
are converted on reading, in :func:`_upgrade_unnamed`, and load as before.
"""

from __future__ import annotations

import math
import os
import pickle  # only for its exception class: nothing here unpickles
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from astroreg.models._registry import create_model, get_model_entry, list_models

__all__ = ["load_model", "save_model"]

_KEYS = ("model", "params", "input_shapes", "input_kinds", "n_outputs", "state_dict")
_OLD_KEYS = ("model", "params", "input_shape", "n_outputs", "state_dict")
_MAX_INPUT_VALUES = 10**8  # per object; a doctored shape must not make the network exhaust memory
#: Input name given to the one input of a file written before inputs had names, when the
#: caller does not say which input it is.
UNNAMED_INPUT = "input"


def save_model(
    path: str | os.PathLike,
    net: nn.Module,
    recipe_model_name: str,
    params: Mapping[str, object],
    input_shapes: Mapping[str, tuple[int, ...]],
    input_kinds: Mapping[str, str],
    n_outputs: int,
) -> Path:
    """Write a network's definition and weights atomically.

    Parameters
    ----------
    path : path-like
        Destination, usually ``<run>/model.pt``.
    net : torch.nn.Module
        The dict-taking network made by :func:`~astroreg.models.create_model` (its
        weights are copied to the CPU).
    recipe_model_name : str
        Its registered name (the recipe's ``model.name``).
    params : mapping
        Its hyper-parameters (the recipe's ``model.params``); plain data only.
    input_shapes : mapping of str to tuple of int
        Per-object shape of each named input.
    input_kinds : mapping of str to str
        Kind of each input.
    n_outputs : int
        Number of outputs.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> net = create_model("mlp", input_shapes={"x": (5,)}, n_outputs=1)  # doctest: +SKIP
    >>> save_model("model.pt", net, "mlp", {}, {"x": (5,)}, {"x": "tabular"}, 1)  # doctest: +SKIP
    """
    # imported here: the data package (h5py, survey readers) is not needed to build networks
    from astroreg.data import atomic_path

    payload = {
        "model": recipe_model_name,
        "params": dict(params),
        "input_shapes": {str(k): tuple(int(s) for s in v) for k, v in input_shapes.items()},
        "input_kinds": {str(k): str(v) for k, v in input_kinds.items()},
        "n_outputs": int(n_outputs),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_model(
    path: str | os.PathLike,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    input_kinds: Mapping[str, str] | None = None,
    n_outputs: int | None = None,
) -> nn.Module:
    """Rebuild a saved network in eval mode on the CPU.

    Parameters
    ----------
    path : path-like
        A ``model.pt`` written by :func:`save_model` (or by astroreg before inputs had
        names).
    input_shapes, input_kinds, n_outputs : optional
        What the run's preprocessor gives and expects; a file that disagrees is refused
        before any network is built. The one input of an old file is named after the
        single name in ``input_shapes`` (else ``"input"``).

    Returns
    -------
    torch.nn.Module
        The dict-taking network, as :func:`~astroreg.models.create_model` returns it.

    Raises
    ------
    ValueError
        If the file is truncated or corrupt, holds anything but tensors and plain data,
        or its contents do not describe a registered network with matching weights and
        inputs.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # a doctored file draws torch's pickle-protocol warnings before the error below
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(_bad_model(path, "it holds pickled objects other than tensors and plain data, "
                                          "which astroreg never loads")) from None
    except EOFError:
        raise ValueError(_bad_model(path, "it ends before its first record")) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (RuntimeError, KeyError, IndexError, ValueError, OSError, zipfile.BadZipFile) as err:
        # a cut zip archive can also surface as OSError (EINVAL) from torch's reader
        raise ValueError(_bad_model(path, f"{type(err).__name__}: {_first_line(err)}")) from None
    payload = _upgrade_unnamed(payload, path, input_shapes, input_kinds)
    _check_model_payload(payload, path, input_shapes, input_kinds, n_outputs)
    try:
        net = create_model(payload["model"], input_shapes=payload["input_shapes"],
                           input_kinds=payload["input_kinds"], n_outputs=payload["n_outputs"], **payload["params"])
        net.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as err:
        raise ValueError(_bad_model(path, f"its weights do not fit network {payload['model']!r}: "
                                          f"{_first_line(err)}")) from None
    return net.eval()


def _upgrade_unnamed(payload, path: Path, input_shapes, input_kinds):
    """A file from before named inputs, in the current layout; any other payload unchanged.

    The one input is named after the caller's single input (else :data:`UNNAMED_INPUT`),
    its kind is the caller's or the network's only declared kind, and the weights get the
    :class:`~astroreg.models.SingleInput` adapter's ``inner.`` prefix.
    """
    if not isinstance(payload, dict) or "input_shapes" in payload or not set(_OLD_KEYS) <= set(payload):
        return payload
    _check_model_payload({**payload, "input_shapes": {UNNAMED_INPUT: payload["input_shape"]},
                          "input_kinds": {}}, path, None, None, None, check_kinds=False)
    name = next(iter(input_shapes)) if input_shapes is not None and len(input_shapes) == 1 else UNNAMED_INPUT
    declared = get_model_entry(payload["model"]).input_kinds or ()
    if input_kinds is not None and name in input_kinds:
        kind = input_kinds[name]
    elif len(declared) == 1:
        kind = declared[0]
    else:
        raise ValueError(_bad_model(path, f"it was written before inputs had names and network "
                                          f"{payload['model']!r} takes {' or '.join(declared) or 'any kind'}; "
                                          f"say which with input_kinds"))
    new = {k: v for k, v in payload.items() if k != "input_shape"}
    new["input_shapes"] = {name: tuple(payload["input_shape"])}
    new["input_kinds"] = {name: kind}
    new["state_dict"] = {f"inner.{k}": v for k, v in payload["state_dict"].items()}
    return new


def _check_model_payload(payload, path: Path, input_shapes, input_kinds, n_outputs, *, check_kinds: bool = True) -> None:
    """Raise ValueError unless ``payload`` has the keys and types :func:`save_model` writes."""
    if not isinstance(payload, dict) or not set(_KEYS) <= set(payload):
        have = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(_bad_model(path, f"it holds {have}, not the keys {sorted(_KEYS)}"))

    def count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    shapes, kinds, n_out, params = (payload[k] for k in ("input_shapes", "input_kinds", "n_outputs", "params"))
    problems = []
    if not isinstance(payload["model"], str) or payload["model"] not in list_models():
        problems.append(f"model {payload['model']!r} is not one of {list_models()}")
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        problems.append("params is not a dict of named parameters")
    if not isinstance(shapes, dict) or not shapes or not all(isinstance(k, str) for k in shapes):
        problems.append(f"input_shapes {shapes!r} is not a dict of named input shapes")
    else:
        for name, shape in shapes.items():
            if (not isinstance(shape, (tuple, list)) or not shape or not all(map(count, shape))
                    or math.prod(shape) > _MAX_INPUT_VALUES):
                problems.append(f"input {name!r} has shape {shape!r}, not a shape of positive integers")
        if input_shapes is not None and not problems:
            problems += _differences("input", {k: tuple(v) for k, v in shapes.items()},
                                     {k: tuple(v) for k, v in input_shapes.items()}, "shape")
    if check_kinds:
        if not isinstance(kinds, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in kinds.items()):
            problems.append(f"input_kinds {kinds!r} is not a dict of input names and kinds")
        elif isinstance(shapes, dict) and set(kinds) != set(shapes):
            problems.append(f"input_kinds names {sorted(kinds)} but input_shapes names {sorted(map(str, shapes))}")
        elif input_kinds is not None:
            problems += _differences("input", kinds, dict(input_kinds), "kind")
    if not count(n_out):
        problems.append(f"n_outputs {n_out!r} is not a positive integer")
    elif n_outputs is not None and n_out != n_outputs:
        problems.append(f"n_outputs {n_out} differs from the preprocessor's {n_outputs} target(s)")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        problems.append("state_dict is not a dict of named tensors")
    if problems:
        raise ValueError(_bad_model(path, "; ".join(problems)))


def _differences(what: str, saved: dict, given: dict, attr: str) -> list[str]:
    """Where the file's inputs differ from the preprocessor's, one phrase each."""
    if set(saved) != set(given):
        return [f"the network's inputs {sorted(saved)} differ from the preprocessor's {sorted(given)}"]
    return [f"{what} {k!r} has {attr} {saved[k]!r}, which differs from the preprocessor's {given[k]!r}"
            for k in saved if saved[k] != given[k]]


def _bad_model(path: Path, detail: str) -> str:
    return f"{path} is truncated or not an astroreg model file ({detail}); train the run again"


def _first_line(err: BaseException) -> str:
    """The gist of an exception: its first line, up to the first full stop (torch adds paragraphs)."""
    text = str(err).strip()
    return text.splitlines()[0].split(". ")[0] if text else "no detail"
