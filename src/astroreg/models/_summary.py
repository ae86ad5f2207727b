"""Human-readable layer table of a network."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from astroreg.models._registry import create_model


def model_summary(name: str, input_shape: tuple[int, ...], n_outputs: int,
                  params: Mapping[str, object] | None = None) -> str:
    """Layers of a registered network with output shapes and parameter counts.

    The last line reads ``trainable parameters: N``.

    Parameters
    ----------
    name : str
        Registered network name.
    input_shape : tuple of int
        Per-object input shape.
    n_outputs : int
        Number of outputs.
    params : mapping, optional
        The network's hyper-parameters.
    """
    # Lightning's table, imported here: the models package is imported by prediction, which needs no Lightning
    import lightning as L
    from lightning.pytorch.utilities.model_summary import ModelSummary

    class _Wrap(L.LightningModule):
        def __init__(self, net: torch.nn.Module, example: torch.Tensor) -> None:
            super().__init__()
            self.net = net
            self.example_input_array = example

        def forward(self, x):
            return self.net(x)

    net = create_model(name, input_shape=input_shape, n_outputs=n_outputs, **dict(params or {}))
    summary = ModelSummary(_Wrap(net, torch.zeros(1, *input_shape)), max_depth=-1)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return f"{summary}\ntrainable parameters: {trainable}"
