"""Human-readable layer table of a network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from astroreg.models._registry import create_model


def model_summary(name: str, input_shapes: Mapping[str, Sequence[int]], n_outputs: int,
                  params: Mapping[str, object] | None = None,
                  input_kinds: Mapping[str, str] | None = None) -> str:
    """Layers of a registered network with output shapes and parameter counts.

    The network is built by :func:`~astroreg.models.create_model`; the last line reads
    ``trainable parameters: N``.

    Parameters
    ----------
    name : str
        Registered network name.
    input_shapes : mapping of str to tuple of int
        Per-object shape of each named input, e.g. ``{"image": (1, 143, 143)}``.
    n_outputs : int
        Number of outputs (0: the network without its head).
    params : mapping, optional
        The network's hyper-parameters.
    input_kinds : mapping of str to str, optional
        Kind of each input; needed by multi-input networks, checked when given.

    Examples
    --------
    >>> print(model_summary("mlp", {"photometry": (5,)}, 1).splitlines()[-1])  # doctest: +SKIP
    trainable parameters: 9089
    """
    # Lightning's table, imported here: the models package is imported by prediction, which needs no Lightning
    import lightning as L
    from lightning.pytorch.utilities.model_summary import ModelSummary

    class _Wrap(L.LightningModule):
        def __init__(self, net: torch.nn.Module, example: dict[str, torch.Tensor]) -> None:
            super().__init__()
            self.net = net
            # a tuple is passed as positional arguments: forward gets the dict itself
            self.example_input_array = (example,)

        def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.net(x)

    net = create_model(name, input_shapes=input_shapes, input_kinds=input_kinds, n_outputs=n_outputs,
                       **dict(params or {}))
    example = {k: torch.zeros(1, *shape) for k, shape in input_shapes.items()}
    summary = ModelSummary(_Wrap(net, example), max_depth=-1)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return f"{summary}\ntrainable parameters: {trainable}"
