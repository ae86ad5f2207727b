"""Fast CPU inference and training set-up for the image networks, and cost probes.

Measured on the 2-core CI machines for ``paper_cnn`` (1 x 143 x 143 stamps), float32,
see ``docs/notes/cnn-cpu-speed.md``: the network is limited by memory traffic of the
convolution and pooling layers, not by arithmetic, and the two things that pay are

* for prediction, ``torch.compile`` (inductor) with weight *freezing*: convolution weights
  are pre-packed for oneDNN once and pooling + ReLU become one fused C++ loop, at a fixed
  batch size (about 4x eager NCHW). ``torch.jit`` trace + freeze + ``optimize_for_inference``
  is the runner-up (about 2.7x) and needs no compiler;
* for both, the channels-last memory format, which roughly doubles eager convolution and
  pooling speed on CPU.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["FastPredictor", "count_flops", "matmul_gflops", "optimize_for_inference", "prepare_for_training"]

logger = logging.getLogger(__name__)

Backend = Literal["auto", "compile", "jit", "eager"]
_BACKENDS = ("auto", "compile", "jit", "eager")


class FastPredictor(nn.Module):
    """A frozen, inference-only wrapper around an optimised network.

    Built by :func:`optimize_for_inference`; call it like the original model. Inputs of any
    batch size are cut into chunks of ``batch_size`` (the last one zero-padded when the
    backend was compiled for a fixed shape) and the outputs are joined again, so a compiled
    graph is never recompiled for a ragged final batch. Every call runs under
    ``torch.inference_mode``.

    Parameters
    ----------
    fn : callable
        The optimised network, a map from a tensor of shape (batch_size, ...) to a tensor of
        shape (batch_size, n_outputs).
    backend : {"compile", "jit", "eager"}
        Which path ``fn`` is; kept for logs and reports.
    batch_size : int
        Chunk size fed to ``fn``.
    device : torch.device
        Inputs are moved here.
    channels_last : bool
        Convert 4-d inputs to the channels-last memory format before calling ``fn``.
    pad : bool
        Zero-pad the last chunk up to ``batch_size`` (for fixed-shape compiled graphs).
        Padding is harmless only because the network is in eval mode, where each sample's
        output does not depend on the rest of the batch.

    Attributes
    ----------
    backend : str
    batch_size : int
    """

    def __init__(
        self,
        fn: nn.Module,
        *,
        backend: str,
        batch_size: int,
        device: torch.device,
        channels_last: bool = False,
        pad: bool = False,
    ) -> None:
        super().__init__()
        self.fn = fn
        self.backend = backend
        self.batch_size = batch_size
        self.device = device
        self.channels_last = channels_last
        self.pad = pad
        self.eval()

    def train(self, mode: bool = True) -> FastPredictor:
        """Stay in eval mode; a frozen predictor cannot be trained.

        Raises
        ------
        RuntimeError
            When asked for training mode.
        """
        if mode:
            raise RuntimeError(
                "a FastPredictor is inference-only (its weights are a frozen snapshot); "
                "train the original model and call optimize_for_inference again"
            )
        return super().train(False)

    def _run(self, x: Tensor) -> Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.fn(x)

    def forward(self, x: Tensor) -> Tensor:
        """Predict for a batch.

        Parameters
        ----------
        x : torch.Tensor
            Tensor of shape (n, ...) with the per-sample shape of the example given to
            :func:`optimize_for_inference`; any ``n >= 1``.

        Returns
        -------
        torch.Tensor
            The network output for all ``n`` samples, shape (n, n_outputs).
        """
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            n, bs = x.shape[0], self.batch_size
            if n == bs:
                return self._run(x)
            outs = []
            for start in range(0, n, bs):
                chunk = x[start:start + bs]
                m = chunk.shape[0]
                if self.pad and m < bs:
                    chunk = torch.cat([chunk, chunk.new_zeros((bs - m, *chunk.shape[1:]))])
                outs.append(self._run(chunk)[:m])
            return torch.cat(outs)


def _max_rel_err(a: Tensor, b: Tensor) -> float:
    scale = b.abs().max().clamp_min(torch.finfo(b.dtype).tiny)
    return float((a.float() - b.float()).abs().max() / scale)


def _to_channels_last(model: nn.Module) -> bool:
    """Convert a model to channels-last in place; False where it has no 4-d weights."""
    if not any(p.dim() == 4 for p in model.parameters()):
        return False
    model.to(memory_format=torch.channels_last)
    return True


def _build_compile(model: nn.Module, example: Tensor) -> nn.Module:
    # ``freezing`` lets inductor constant-fold the weights and pre-pack them in oneDNN's
    # blocked layout once, instead of re-laying them out on every call; it is what makes
    # compile beat jit here (1.9k against 1.2k images/s). The options apply to this
    # compiled function only, not to the global inductor config.
    compiled = torch.compile(model, dynamic=False, options={"freezing": True})
    with torch.inference_mode():
        compiled(example)
    return compiled


def _build_jit(model: nn.Module, example: Tensor) -> nn.Module:
    # A trace records one path through Python control flow; the tracer warns when a
    # tensor value decides that path, and such a trace would be silently wrong for other
    # inputs, so the warning is an error here.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        frozen = torch.jit.freeze(traced)
        return torch.jit.optimize_for_inference(frozen)


def optimize_for_inference(
    model: nn.Module,
    example: Tensor,
    *,
    backend: Backend = "auto",
    rtol: float = 1e-4,
) -> FastPredictor:
    """Return the fastest float32 prediction path found for ``model``.

    On CPU, ``backend="auto"`` tries, in order, ``torch.compile`` with inductor weight
    freezing, then ``torch.jit`` trace + freeze + ``optimize_for_inference``, then eager in
    channels-last. A path that raises (no C++ compiler, untraceable Python control flow, an
    unsupported layer) or whose output on ``example`` differs from eager float32 by more
    than ``rtol`` (relative to the largest output) is logged as a warning and skipped. On
    any other device the model simply runs eagerly there.

    The model is deep-copied, so the caller's module keeps its mode, layout and weights;
    the predictor holds a snapshot of the weights at the time of the call.

    Parameters
    ----------
    model : torch.nn.Module
        The network, mapping a tensor of shape (batch, ...) to one of shape
        (batch, n_outputs).
    example : torch.Tensor
        A real input batch of shape (batch_size, ...), on the device to predict on. Its
        batch size becomes the chunk size; 64 is the fastest for ``paper_cnn`` on 2 cores
        (smaller chunks stay in the L2 cache). Compilation happens on this example.
    backend : {"auto", "compile", "jit", "eager"}
        Force one path; a forced path that fails still falls back to eager with a warning.
    rtol : float
        Largest accepted ``max|fast - eager| / max|eager|`` on ``example``.

    Returns
    -------
    FastPredictor
        A module in eval mode; ``predictor(x)`` accepts any batch size and returns a tensor
        of shape (n, n_outputs). ``predictor.backend`` names the path in use.

    Raises
    ------
    ValueError
        For an unknown ``backend`` or an ``example`` without a batch dimension.

    Examples
    --------
    >>> import torch
    >>> from astroreg.models import create_model
    >>> from astroreg.models._fast import optimize_for_inference
    >>> net = create_model("paper_cnn", input_shape=(1, 143, 143), n_outputs=1)
    >>> fast = optimize_for_inference(net, torch.randn(64, 1, 143, 143))  # doctest: +SKIP
    >>> fast(torch.randn(300, 1, 143, 143)).shape  # doctest: +SKIP
    torch.Size([300, 1])
    """
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(_BACKENDS)}")
    if not isinstance(example, Tensor) or example.dim() < 1 or example.shape[0] < 1:
        raise ValueError(
            "example must be a tensor with a leading batch dimension, e.g. of shape "
            f"(64, bands, H, W); got {type(example).__name__} "
            f"of shape {tuple(getattr(example, 'shape', ()))}"
        )
    device = example.device
    batch_size = int(example.shape[0])
    model = copy.deepcopy(model).to(device).eval()
    with torch.inference_mode():
        reference = model(example)

    if device.type != "cpu":
        return FastPredictor(model, backend="eager", batch_size=batch_size, device=device)

    candidates = ["compile", "jit"] if backend == "auto" else [backend]
    for name in candidates:
        if name == "eager":
            break
        build = _build_compile if name == "compile" else _build_jit
        start = time.perf_counter()
        try:
            fn = build(copy.deepcopy(model), example)
            with torch.inference_mode():
                out = fn(example)
            err = _max_rel_err(out, reference)
        except Exception as exc:  # any failure of an optional speed-up must not stop prediction
            logger.warning("optimize_for_inference: %s path failed (%s: %s); trying the next one",
                           name, type(exc).__name__, exc)
            continue
        if not err <= rtol:
            logger.warning("optimize_for_inference: %s path differs from eager by %.2g (rtol %.2g); "
                           "not using it", name, err, rtol)
            continue
        logger.info("optimize_for_inference: using %s (built in %.1f s, max rel. error %.2g)",
                    name, time.perf_counter() - start, err)
        return FastPredictor(fn, backend=name, batch_size=batch_size, device=device, pad=name == "compile")

    try:
        channels_last = example.dim() == 4 and _to_channels_last(model)
    except Exception as exc:  # layout is only a speed-up
        logger.warning("optimize_for_inference: channels-last failed (%s); keeping NCHW", exc)
        channels_last = False
    if backend != "eager":
        logger.warning("optimize_for_inference: falling back to eager PyTorch")
    return FastPredictor(model, backend="eager", batch_size=batch_size, device=device, channels_last=channels_last)


def prepare_for_training(model: nn.Module) -> nn.Module:
    """Put a network in the fastest training layout for its device, in place.

    On CPU, image networks (with 4-d convolution weights) are converted to the channels-last
    memory format, which about doubles the speed of convolution, pooling and their
    gradients in oneDNN. Inputs in the default NCHW layout still work (the first
    convolution converts them); giving channels-last batches saves that copy. Other
    networks, and any device but CPU, are returned unchanged.

    Parameters
    ----------
    model : torch.nn.Module
        The network to train.

    Returns
    -------
    torch.nn.Module
        The same object, for chaining.

    Examples
    --------
    >>> from astroreg.models import create_model
    >>> from astroreg.models._fast import prepare_for_training
    >>> net = prepare_for_training(create_model("paper_cnn", input_shape=(1, 143, 143), n_outputs=1))
    """
    params = list(model.parameters())
    if params and params[0].device.type == "cpu":
        _to_channels_last(model)
    return model


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Floating-point operations of one forward pass, as counted by PyTorch.

    Uses :class:`torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as
    two operations for matrix products and convolutions and ignores cheap element-wise
    work (bias, activation, pooling).

    Parameters
    ----------
    model : torch.nn.Module
        The network; run once without gradients on zeros of its parameters' dtype and device.
    input_shape : sequence of int
        Full input shape *including* the batch dimension, e.g. ``(1, 1, 143, 143)``.

    Returns
    -------
    int
        Total FLOPs for that batch.

    Examples
    --------
    >>> from torch import nn
    >>> count_flops(nn.Linear(10, 5), (7, 10))
    700
    """
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(tuple(input_shape), dtype=dtype, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


def matmul_gflops(n: int = 2048, repeats: int = 10, *, device: str | torch.device = "cpu") -> float:
    """Measure the float32 matrix-multiply rate of this machine.

    Times ``torch.mm`` of two ``n x n`` float32 matrices with the current
    ``torch.get_num_threads()`` and reports the best of ``repeats`` runs, so a busy moment
    on a shared machine does not count. Use it as the roof to express a network's
    throughput against: ``images_per_s * count_flops(net, (1, *shape)) / 1e9 / gflops``.

    Parameters
    ----------
    n : int
        Matrix side; 2048 is large enough for MKL to reach its plateau on 2 cores.
    repeats : int
        Timed products, after one warm-up product.
    device : str or torch.device
        Where to multiply.

    Returns
    -------
    float
        GFLOP/s, counting ``2 n^3`` operations per product.

    Examples
    --------
    >>> matmul_gflops(512, repeats=3) > 0
    True
    """
    if n < 1 or repeats < 1:
        raise ValueError(f"n and repeats must be positive integers; got n={n}, repeats={repeats}")
    device = torch.device(device)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.mm(a, b, out=out)
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9
