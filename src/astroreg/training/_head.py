"""Refit a trained network's output layer with per-sample weights, on its frozen features.

The decoupled re-training of the regressor in Yang et al. 2021 (ICML, "Delving into Deep
Imbalanced Regression"), after Kang et al. 2020 (ICLR, "Decoupling Representation and
Classifier for Long-Tailed Recognition"): the network learns its features from every
object as it comes, and only the last linear map is refitted with the weights of the rare
labels. The refit runs full-batch Adam on the frozen features from the trained weights and
keeps the step with the lowest weighted validation loss; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from numpy.typing import NDArray
from torch import nn

from astroreg.training._data import BatchSource, batch_loader
from astroreg.training._losses import RegressionLoss

_FEATURE_BATCH = 2048


def output_layer(net: nn.Module, n_outputs: int,
                 sample: dict[str, torch.Tensor] | torch.Tensor) -> tuple[str, nn.Linear]:
    """The linear layer whose output is the network's output, and its name.

    The last ``nn.Linear`` with ``n_outputs`` outputs in the network's module order, checked
    on ``sample`` (a batch of inputs): its output must be the network's output exactly.

    Raises
    ------
    ValueError
        If no such layer exists (an ensemble's mean, an activation after the last layer),
        saying to use ``stage: joint``.
    """
    candidates = [(name, m) for name, m in net.named_modules()
                  if isinstance(m, nn.Linear) and m.out_features == n_outputs]
    if candidates:
        name, layer = candidates[-1]
        seen: list[torch.Tensor] = []
        hook = layer.register_forward_hook(lambda m, args, out: seen.append(out.detach()))
        try:
            with torch.no_grad():
                out = net(sample)
        finally:
            hook.remove()
        if len(seen) == 1 and seen[0].shape == out.shape and torch.equal(seen[0], out):
            return name, layer
    raise ValueError(
        f"training.sample_weights.stage: head refits the network's output layer, but the output of "
        f"{type(net).__name__} is not that of one linear layer with {n_outputs} outputs (an ensemble's mean, or "
        "an activation after it); use stage: joint"
    )


@dataclass
class _Features:
    inputs: torch.Tensor  # what the output layer receives, (n, width)
    targets: torch.Tensor
    weights: torch.Tensor | None


def _features(net: nn.Module, layer: nn.Linear, source: BatchSource, device: str) -> _Features:
    """The output layer's inputs for every item of ``source`` (network in eval mode, no gradients)."""
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().float()))
    try:
        with torch.no_grad():
            for x, _, _ in batch_loader(source, _FEATURE_BATCH, shuffle=False):
                net(move_data_to_device(x, device))
    finally:
        hook.remove()
    return _Features(torch.cat(seen), source.targets.to(device), None if source.weights is None
                     else source.weights.to(device))


def refit_output_layer(
    net: nn.Module,
    train: BatchSource,
    val: BatchSource,
    weights: NDArray,
    val_weights: NDArray,
    loss: RegressionLoss,
    *,
    n_outputs: int,
    l2: float = 0.0,
    l2_kernels: Sequence[nn.Parameter] = (),
    device: str = "cpu",
    lr: float = 1e-2,
    max_steps: int = 3000,
    patience: int = 100,
) -> dict:
    """Refit ``net``'s output layer in place with per-sample ``weights`` on the training objects.

    Parameters
    ----------
    net : torch.nn.Module
        The trained network (any wrappers taken off); put in eval mode and on ``device``.
    train, val : BatchSource
        The training and validation objects; the training source's own weights
        (``training.weight_column``) multiply ``weights``.
    weights : array of shape (len(train),)
        The engine's sample weights of the training objects (noisy copies included).
    val_weights : array of shape (len(val),)
        The same weighting applied to the validation labels: the weighted validation loss
        the refit stops on.
    loss : RegressionLoss
        The training loss (kind, Huber delta, target weights).
    n_outputs : int
    l2 : float
        Keras-style L2 (``l2 * sum(w ** 2)``) of the layer's kernel, when it is one of
        ``l2_kernels``, the kernels the training's ``l2`` acted on.
    l2_kernels : sequence of torch.nn.Parameter
    device : str
    lr : float
        Adam's learning rate for the full-batch steps.
    max_steps, patience : int
        Steps at most; stop when the weighted validation loss has not fallen for
        ``patience`` steps, and keep the weights of its lowest value (the trained ones if it
        never falls).

    Returns
    -------
    dict
        ``layer`` (its name), ``parameters``, ``steps`` (Adam steps run),
        ``best_step`` (the one kept; 0: the trained weights) and the training loss (weighted),
        the validation loss (as training validated: unweighted) and the weighted validation
        loss, each ``_before`` and ``_after``.
    """
    net = net.to(device).eval()
    first = move_data_to_device(next(iter(batch_loader(val, 2, shuffle=False)))[0], device)
    name, layer = output_layer(net, n_outputs, first)
    tr, va = _features(net, layer, train, device), _features(net, layer, val, device)
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32), device=device)
    w_train = w if tr.weights is None else w * tr.weights
    w_val = torch.as_tensor(np.asarray(val_weights, dtype=np.float32), device=device)
    w_val = w_val if va.weights is None else w_val * va.weights
    loss = loss.to(device)
    penalty = l2 if any(k is layer.weight for k in l2_kernels) else 0.0
    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = None if layer.bias is None else layer.bias.detach().clone().requires_grad_(True)
    params = [weight] + ([bias] if bias is not None else [])

    def predict(h: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(h, weight, bias)

    def objective() -> torch.Tensor:
        value = loss(predict(tr.inputs), tr.targets, w_train)
        return value + penalty * weight.pow(2).sum() if penalty else value

    def scores() -> dict[str, float]:
        with torch.no_grad():
            p = predict(va.inputs)
            return {"train_loss": float(objective()), "val_loss": float(loss(p, va.targets, va.weights)),
                    "weighted_val_loss": float(loss(p, va.targets, w_val))}

    before = scores()
    # Full-batch Adam from the trained weights, stopped on the weighted validation loss: the
    # layer's inputs are often near-collinear (ReLU units), and the exact weighted optimum on
    # the training objects leans on directions that the validation objects do not share
    # (L-BFGS gets there in a few iterations; the gradient path keeps away from them longer).
    opt = torch.optim.Adam(params, lr=lr)
    best, best_at, kept = before["weighted_val_loss"], 0, [p.detach().clone() for p in params]
    step = 0
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        objective().backward()
        opt.step()
        with torch.no_grad():
            current = float(loss(predict(va.inputs), va.targets, w_val))
        if current < best:
            best, best_at, kept = current, step, [p.detach().clone() for p in params]
        elif step - best_at >= patience:
            break
    with torch.no_grad():
        for p, k in zip(params, kept):
            p.copy_(k)
    after = scores()
    if not all(np.isfinite(v) for v in after.values()):
        raise FloatingPointError(f"the weighted refit of output layer {name!r} diverged ({after}); use stage: joint")
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return {"layer": name, "parameters": sum(p.numel() for p in params), "steps": step, "best_step": best_at,
            **{f"{k}_before": v for k, v in before.items()}, **{f"{k}_after": v for k, v in after.items()}}
