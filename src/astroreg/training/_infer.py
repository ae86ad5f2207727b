"""Forward passes of a trained network over named inputs, on its fastest prediction path."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from astroreg.models import optimize_for_inference
from astroreg.models._registry import unwrap_single


class InferenceNet:
    """A network ready for prediction, called on ``{input name: tensor}`` batches.

    A single-input network runs its inner tensor network (traced, compiled or folded) on
    the one input's tensor; a multi-input network gets the whole mapping.

    Parameters
    ----------
    module : torch.nn.Module or callable
        What runs the forward pass.
    name : str or None
        The one input the module takes as a plain tensor; None for a module that takes
        the mapping.
    """

    def __init__(self, module, name: str | None) -> None:
        self.module, self.name = module, name

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.module(batch[self.name]) if self.name is not None else self.module(dict(batch))


def as_tensor(x: NDArray) -> torch.Tensor:
    """``torch.from_numpy(x)``, quiet for read-only arrays (rows mapped from a dataset file).

    The network only reads its input, so sharing a read-only buffer is safe; torch warns
    about it in general because a tensor could be written to.
    """
    if x.flags.writeable:
        return torch.from_numpy(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(x)


def n_objects(x: Mapping[str, NDArray]) -> int:
    """Number of objects in a ``{name: array}`` batch."""
    return len(next(iter(x.values())))


def forward_batches(net: InferenceNet, x: Mapping[str, NDArray[np.float32]], batch_size: int,
                    device: str = "cpu") -> NDArray[np.float32]:
    """Network outputs for inputs ``x`` (``{name: (n, ...)}``), computed ``batch_size`` objects at a time."""
    n = n_objects(x)
    parts = []
    names = [net.name] if net.name is not None else list(x)
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            xb = {k: as_tensor(x[k][s:s + batch_size]).to(device, non_blocking=True) for k in names}
            parts.append(net(xb).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.empty((n, 0), dtype=np.float32)


def prepare_inference(net: nn.Module, example: Mapping[str, NDArray[np.float32]], batch_size: int, device: str,
                      backend: str = "auto", *, compile_network: bool = True,
                      inner: nn.Module | None = None) -> InferenceNet:
    """The fastest prediction path for ``net``, checked against eager on a real batch.

    A single-input network goes through :func:`astroreg.models.optimize_for_inference`
    on its plain tensor, a multi-input network on the mapping (traced with the mapping as
    its one argument, checked against eager); with ``compile_network`` (an input's kind
    gains from a trace or inductor) the example is padded to a whole batch. ``inner`` replaces the single-input network's own (an
    equivalent with a preprocessing step folded in). ``net`` is modified (moved, put in
    eval mode): pass the caller's own copy.
    """
    checked = compile_network or backend not in ("auto", "eager")  # dense networks stay eager, unchecked
    single = unwrap_single(net)
    if single is None:  # several inputs: the network takes the mapping, traced as one argument
        x = {k: _example(v, batch_size, device, checked) for k, v in example.items()}
        return InferenceNet(optimize_for_inference(net.to(device).eval(), x, backend=backend, copy_model=False), None)
    name, own = single
    inner = own if inner is None else inner
    x = _example(example[name], batch_size, device, checked)
    return InferenceNet(optimize_for_inference(inner.to(device).eval(), x, backend=backend, copy_model=False), name)


def _example(x: NDArray[np.float32], batch_size: int, device: str, whole: bool) -> torch.Tensor:
    """The first ``batch_size`` objects of ``x`` as a tensor; zero-padded to a whole batch for a compiled path."""
    t = as_tensor(np.ascontiguousarray(x[:batch_size])).to(device)
    if len(t) < batch_size and whole:
        t = torch.cat([t, t.new_zeros((batch_size - len(t), *t.shape[1:]))])
    return t
