"""Fast CPU prediction and training set-up for the image networks, and cost probes.

Measured on the 2-core CI machines for ``paper_cnn`` (1 x 143 x 143 stamps, float32, see
``docs/notes/cnn-cpu-speed.md``), the network is limited by memory traffic, and three
things pay, in this order:

* small chunks: per-image speed halves when more than about 32 stamps go through a
  layer at once, because the layer's working set no longer fits the caches. Batches are
  therefore cut into :data:`CPU_CHUNK` stamps, for prediction and for training alike;
* for prediction, ``torch.jit`` trace + freeze + ``optimize_for_inference``, which
  pre-packs the weights for oneDNN and keeps activations in oneDNN's blocked layout from
  the first convolution to the flatten (``torch.compile`` with weight freezing is as fast
  but takes seconds to compile and needs a C++ compiler, so it is the second choice);
* the channels-last memory format, about 2x for eager convolution and pooling and their
  gradients.

For dense networks on spectra, :func:`fold_standardization` moves the per-spectrum
standardisation into the first ``nn.Linear`` layer(s), so that prediction runs on the flux
as stored (no standardised copy of every chunk).

Networks come in two forms (see :mod:`astroreg.models._registry`): the tensor network of a
single-input model (``unwrap_single(net)[1]``), which prediction optimises as it always did,
and the dict-taking module that :func:`~astroreg.models.create_model` returns. The
functions here take either: a batch is a tensor ``(n, ...)`` or a ``dict[str, Tensor]`` of
such tensors with the same ``n``; a batch with a 4-d tensor counts as images (chunked,
traced), one of 2-d tensors only as dense (eager under ``auto``).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from astroreg.models._registry import SingleInput

__all__ = [
    "CPU_CHUNK", "ChunkedForward", "FastPredictor", "StandardizedLinear", "count_flops",
    "fold_standardization", "matmul_gflops", "optimize_for_inference", "prepare_for_training", "unwrap",
]

logger = logging.getLogger(__name__)

Backend = Literal["auto", "jit", "compile", "eager"]
#: A batch: one tensor of shape (n, ...), or named tensors of the same length n.
Batch = Tensor | dict[str, Tensor]
_BACKENDS = ("auto", "jit", "compile", "eager")

#: Stamps per network call on CPU. Per-image speed halves between 32 and 48 stamps of
#: 143 x 143 on the 2-core machines; 16 keeps a margin at no cost.
CPU_CHUNK = 16


def _map(fn: Callable[[Tensor], Tensor], x: Batch) -> Batch:
    """``fn`` applied to the batch's tensor, or to each of its named tensors."""
    return {k: fn(v) for k, v in x.items()} if isinstance(x, dict) else fn(x)


def _tensors(x: Batch) -> list[Tensor]:
    return list(x.values()) if isinstance(x, dict) else [x]


def _rows(x: Batch) -> int:
    return _tensors(x)[0].shape[0]


def _has_images(x: Batch) -> bool:
    return any(t.dim() == 4 for t in _tensors(x))


def _rows_slice(x: Batch, start: int, stop: int) -> Batch:
    return _map(lambda t: t[start:stop], x)


def _zero_pad(x: Batch, size: int) -> Batch:
    """The batch with zero rows appended up to ``size`` rows."""
    return _map(lambda t: torch.cat([t, t.new_zeros((size - t.shape[0], *t.shape[1:]))]), x)


def _channels_last(x: Batch) -> Batch:
    return _map(lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t, x)


def _check_batch(example: object) -> None:
    tensors = list(example.values()) if isinstance(example, dict) else [example]
    ok = bool(tensors) and all(isinstance(t, Tensor) and t.dim() >= 1 and t.shape[0] >= 1 for t in tensors)
    if not ok or len({t.shape[0] for t in tensors}) != 1:
        shapes = ({k: tuple(getattr(v, "shape", ())) for k, v in example.items()} if isinstance(example, dict)
                  else tuple(getattr(example, "shape", ())))
        raise ValueError(
            "example must be a tensor with a leading batch dimension, e.g. of shape "
            "(16, bands, H, W), or a dict of such tensors with the same batch size; got "
            f"{type(example).__name__} of shape {shapes}"
        )


class FastPredictor(nn.Module):
    """A frozen, inference-only wrapper around an optimised network.

    Built by :func:`optimize_for_inference`; call it like the original model. Inputs of any
    batch size are cut into chunks of ``batch_size`` (the last one zero-padded when the
    path was compiled for one fixed shape) and the outputs joined again. Every call runs
    under ``torch.inference_mode``.

    Parameters
    ----------
    fn : callable
        The optimised network, mapping a batch (a tensor of shape (chunk, ...) or a dict
        of them) to a tensor of shape (chunk, n_outputs).
    backend : {"jit", "compile", "eager"}
        Which path ``fn`` is; kept for logs and reports.
    batch_size : int or None
        Chunk size given to ``fn``; None passes every input whole.
    device : torch.device
        Inputs are moved here.
    channels_last : bool
        Convert 4-d input tensors to the channels-last memory format before calling ``fn``.
    pad : bool
        Zero-pad the last chunk up to ``batch_size``. Harmless because the network is in
        eval mode, where each sample's output does not depend on the rest of the batch.

    Attributes
    ----------
    backend : str
        The path in use.
    batch_size : int or None
        The chunk size.
    """

    def __init__(
        self,
        fn: Callable[[Batch], Tensor],
        *,
        backend: str,
        batch_size: int | None,
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

    def _run(self, x: Batch) -> Tensor:
        if self.channels_last:
            x = _channels_last(x)
        return self.fn(x)

    def forward(self, x: Batch) -> Tensor:
        """Predict for a batch.

        Parameters
        ----------
        x : torch.Tensor or dict of str to torch.Tensor
            Tensor of shape (n, ...) with the per-sample shape of the example given to
            :func:`optimize_for_inference` (or a dict of them, as the example was); any
            ``n >= 1``.

        Returns
        -------
        torch.Tensor
            The network output for all ``n`` samples, shape (n, n_outputs).
        """
        with torch.inference_mode():
            x = _map(lambda t: t.to(self.device, non_blocking=True), x)
            bs, n = self.batch_size, _rows(x)
            if bs is None or n == bs or (n < bs and not self.pad):
                return self._run(x)
            outs = []
            for start in range(0, n, bs):
                chunk = _rows_slice(x, start, start + bs)
                m = _rows(chunk)
                if self.pad and m < bs:
                    chunk = _zero_pad(chunk, bs)
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


def _build_jit(model: nn.Module, example: Batch) -> tuple[nn.Module, bool]:
    # A trace records one path through Python control flow; the tracer warns when a
    # tensor value decides that path, and such a trace would be silently wrong for other
    # inputs, so the warning is an error here. A dict is traced as the one argument.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, (example,) if isinstance(example, dict) else example, check_trace=False)
        frozen = torch.jit.freeze(traced)
        return torch.jit.optimize_for_inference(frozen), False


def _build_compile(model: nn.Module, example: Batch) -> tuple[nn.Module, bool]:
    # ``freezing`` constant-folds the weights and pre-packs them for oneDNN once; with
    # channels-last it matches the jit path (without either it is no faster than eager).
    # The options apply to this compiled function only, not to the global inductor config.
    channels_last = _has_images(example) and _to_channels_last(model)
    if channels_last:
        example = _channels_last(example)
    compiled = torch.compile(model, dynamic=False, options={"freezing": True})
    with torch.inference_mode():
        compiled(example)  # compiles now, so that a failure is caught here
    return compiled, channels_last


_BUILDERS = {"jit": _build_jit, "compile": _build_compile}


def optimize_for_inference(
    model: nn.Module,
    example: Batch,
    *,
    backend: Backend = "auto",
    batch_size: int | None = None,
    rtol: float = 1e-4,
    copy_model: bool = True,
) -> FastPredictor:
    """Return the fastest float32 prediction path found for ``model``.

    On CPU, ``backend="auto"`` keeps networks on 2-d (batch, features) inputs eager (the
    trace brings dense layers nothing); for others (images, or a dict of inputs with an
    image among them) it tries, in order, ``torch.jit`` trace + freeze +
    ``optimize_for_inference`` (about 1 s to build), ``torch.compile`` with inductor weight
    freezing (5-15 s, needs a C++ compiler; it rescues networks that cannot be traced),
    then eager in channels-last. A path that raises (no compiler, data-dependent Python
    control flow, an unsupported layer) or whose output differs from eager float32 by
    more than ``rtol`` is logged as a warning and skipped. All paths cut the input into
    chunks of ``batch_size``. On any other device the model simply runs eagerly there,
    unchunked.

    The model is deep-copied, so the caller's module keeps its mode, layout and weights;
    the predictor holds a snapshot of the weights at the time of the call.

    Parameters
    ----------
    model : torch.nn.Module
        The network, mapping a tensor of shape (batch, ...) to one of shape
        (batch, n_outputs): for a single-input model the tensor network
        ``unwrap_single(net)[1]``, the fastest path. A dict-taking network (multi-input,
        or a :class:`~astroreg.models.SingleInput`) works too, given a dict ``example``;
        it is traced with the dict as its one argument and checked against eager like any
        other. :class:`ChunkedForward` wrappers from :func:`prepare_for_training` are
        removed from the copy.
    example : torch.Tensor or dict of str to torch.Tensor
        A real input batch of shape (n, ...), any ``n >= 1``, on the device to predict on
        (a dict of them, all with the same ``n``, for a dict-taking network); the paths are
        built and checked on it (repeated up to ``batch_size`` rows).
    backend : {"auto", "jit", "compile", "eager"}
        Force one path; a forced path that fails still falls back to eager with a warning.
    batch_size : int, optional
        Chunk size. Default on CPU: the network's own ``inference_chunk`` attribute when it
        has one (``pooled_cnn1d``: 32 spectra), else :data:`CPU_CHUNK` for image batches (a
        4-d input, whose convolutions leave the caches beyond a few dozen stamps); no
        chunking for other inputs (dense networks on spectra or tables run fastest on whole
        large batches: the paper-001 MLP gains ~30% from 256 to 2048 rows per call). No
        chunking on other devices.
    rtol : float
        Largest accepted ``max|fast - eager| / max|eager|`` on the example.
    copy_model : bool
        Work on a deep copy of ``model`` (the default); False lets the predictor use and
        change ``model`` itself (device, layout), for a caller that owns it.

    Returns
    -------
    FastPredictor
        A module in eval mode; ``predictor(x)`` accepts any batch size and returns a tensor
        of shape (n, n_outputs). ``predictor.backend`` names the path in use.

    Raises
    ------
    ValueError
        For an unknown ``backend``, a non-positive ``batch_size`` or an ``example``
        without a batch dimension.

    Examples
    --------
    >>> import torch
    >>> from astroreg.models import create_model
    >>> from astroreg.models._fast import optimize_for_inference
    >>> from astroreg.models import unwrap_single
    >>> net = create_model("paper_cnn", input_shapes={"image": (1, 143, 143)}, n_outputs=1)
    >>> name, inner = unwrap_single(net)
    >>> fast = optimize_for_inference(inner, torch.randn(16, 1, 143, 143))
    >>> fast(torch.randn(300, 1, 143, 143)).shape
    torch.Size([300, 1])
    """
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(_BACKENDS)}")
    _check_batch(example)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    device = _tensors(example)[0].device
    model = unwrap(copy.deepcopy(model) if copy_model else model).to(device).eval()
    if device.type != "cpu":
        return FastPredictor(model, backend="eager", batch_size=batch_size, device=device)

    if batch_size is None:
        # A network may say how many objects a call should take on CPU (``inference_chunk``:
        # a 1-D CNN on spectra whose maps leave the caches beyond a few dozen spectra).
        batch_size = getattr(model, "inference_chunk", None) or (CPU_CHUNK if _has_images(example) else None)
    size = batch_size or _rows(example)

    # Dense networks on (batch, features) inputs: the frozen trace runs no faster than eager
    # (paper-001 MLP, 2048 x 4000: the same time per call) but costs ~1 s to build and two
    # slow profiling calls, so ``auto`` keeps them eager.
    dense = all(t.dim() == 2 for t in _tensors(example))
    candidates = ([] if dense else ["jit", "compile"]) if backend == "auto" else [backend]
    candidates = candidates[:candidates.index("eager")] if "eager" in candidates else candidates
    if candidates:
        # The eager reference the faster paths are checked against; with none to check (dense
        # networks, eager asked for) neither it nor the repeated example is made: a forward
        # pass of a 2048-spectrum batch and a 32 MB copy, ~0.1 s of a prediction's fixed cost.
        reps = -(-size // _rows(example))
        example = _map(lambda t: t.repeat(reps, *([1] * (t.dim() - 1)))[:size].contiguous(), example)
        with torch.inference_mode():
            reference = model(example)
    for name in candidates:
        start = time.perf_counter()
        try:
            fn, channels_last = _BUILDERS[name](copy.deepcopy(model), example)
            with torch.inference_mode():
                out = fn(_channels_last(example) if channels_last else example)
            err = _max_rel_err(out, reference)
        except Exception as exc:  # a failing speed-up must never stop prediction
            logger.warning("optimize_for_inference: %s path failed (%s: %s); trying the next one",
                           name, type(exc).__name__, exc)
            continue
        if not err <= rtol:
            logger.warning("optimize_for_inference: %s path differs from eager by %.2g (rtol %.2g); "
                           "not using it", name, err, rtol)
            continue
        logger.info("optimize_for_inference: using %s (built in %.1f s, max rel. error %.2g)",
                    name, time.perf_counter() - start, err)
        # inductor compiled one fixed shape: it gets chunks of that shape, the last one padded.
        chunk = size if name == "compile" else batch_size
        return FastPredictor(fn, backend=name, batch_size=chunk, device=device,
                             channels_last=channels_last, pad=name == "compile")

    try:
        channels_last = _has_images(example) and _to_channels_last(model)
    except Exception as exc:  # layout is only a speed-up
        logger.warning("optimize_for_inference: channels-last failed (%s); keeping NCHW", exc)
        channels_last = False
    if backend != "eager" and not (dense and backend == "auto"):
        logger.warning("optimize_for_inference: falling back to eager PyTorch")
    return FastPredictor(model, backend="eager", batch_size=batch_size, device=device,
                         channels_last=channels_last)


class StandardizedLinear(nn.Module):
    """``linear(z)`` for the per-row standardised input ``z = (x - mean(x)) / std(x)``, computed from ``x``.

    Per-spectrum standardisation folded into the first layer of a network:
    ``W z + b = (W x - mean(x) W 1) / std(x) + b``, so the big matrix product runs on the
    raw rows and the standardised copy of the input is never written (on the 2-core
    machines, 2048 x 4000 float32 spectra: ~3 us a spectrum saved, a third of the paper
    model's forward pass). The row sums and sums of squares take two reads of ``x`` (float32
    accumulation, float64 arithmetic after; ~0.9 us a spectrum together, less than a row of
    ones appended to ``W``, which costs the matrix product 10%).

    Rows that this shortcut would not reproduce to float32 accuracy go through
    ``standardize`` and the plain ``linear`` instead: rows with a non-finite value, rows
    whose variance is not positive (constant rows: ``standardize`` makes them 0), and rows
    whose offset is large against their spread (``|mean| > max_offset * std``), where
    ``E[x^2] - mean^2`` and ``W x - mean W 1`` lose digits to cancellation (a float32
    error of ``eps * (1 + (mean / std)^2)`` in the variance).

    Parameters
    ----------
    linear : torch.nn.Linear
        The layer that receives the standardised rows; its weights are copied.
    standardize : callable
        The reference standardisation, in place on a C-contiguous float32 array (n, L)
        (:func:`astroreg.preprocess._spectra.standardize_rows_`): population std, rows with zero
        spread set to 0, non-finite pixels handled as it chooses. Called on copies of the
        exceptional rows only.
    max_offset : float
        Largest ``|mean| / std`` of a row that takes the folded path.
    """

    def __init__(self, linear: nn.Linear, standardize: Callable[[NDArray[np.float32]], NDArray[np.float32]], *,
                 max_offset: float = 8.0) -> None:
        super().__init__()
        w = linear.weight.detach()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", w)  # shared with ``linear``, which is replaced
        self.register_buffer("bias", linear.bias.detach() if linear.bias is not None else w.new_zeros(len(w)))
        self.register_buffer("weight_sum", w.sum(dim=1, dtype=torch.float64).to(w.dtype))
        self.standardize = standardize
        self.max_offset = float(max_offset)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, max_offset={self.max_offset}"

    def forward(self, x: Tensor) -> Tensor:
        """``linear((x - mean) / std)`` row by row, for ``x`` of shape (n, in_features)."""
        n_pix = x.shape[-1]
        mean = x.sum(dim=1).double() / n_pix  # torch's cascade sum: float32 error ~eps
        var = _row_sumsq(x) / n_pix - mean * mean
        u = F.linear(x, self.weight)
        ok = (var > 0) & (mean * mean <= self.max_offset ** 2 * var)  # False for NaN
        inv = torch.where(ok, var.clamp_min(torch.finfo(torch.float64).tiny).rsqrt(), 0.0)
        # y = (u - mean W1) inv + b, in place on the product (a fresh (n, out) array costs page faults)
        y = u.mul_(inv.to(u.dtype)[:, None])
        y.addr_((-mean * inv).to(u.dtype), self.weight_sum)
        y.add_(self.bias)
        hard = torch.nonzero(~ok).flatten()
        if len(hard):
            z = self.standardize(np.ascontiguousarray(x[hard].detach().cpu().numpy(), dtype=np.float32))
            y[hard] = F.linear(torch.from_numpy(z).to(x.device, x.dtype), self.weight, self.bias)
        return y


def _row_sumsq(x: Tensor) -> Tensor:
    """Sum of squares of each row, float64 of shape (n,) (float32 accumulation).

    The vector norm's reduction kernel: one read of ``x``, on all of torch's threads, as
    fast as numpy's ``einsum`` on one (which is single-threaded) and 2x ``vecdot``.
    """
    return torch.linalg.vector_norm(x, dim=1).double().square()


def fold_standardization(
    model: nn.Module, standardize: Callable[[NDArray[np.float32]], NDArray[np.float32]], *, max_offset: float = 8.0,
    inplace: bool = False,
) -> nn.Module | None:
    """A copy of ``model`` that takes raw rows and standardises them inside its first layer, or None.

    For a network whose input goes only into ``nn.Linear`` layers (the stem of
    ``residual_mlp``, the first layer of each network of ``dnn_li2017``), each of them is
    replaced by a :class:`StandardizedLinear`: ``copy(x) == model(standardize(x))`` to
    float32 rounding, without the standardised copy of ``x``. The structure is read from a
    :func:`torch.fx.symbolic_trace` of the model; a network that cannot be traced, or whose
    input goes anywhere else (a convolution, a reshape, a skip connection from the input),
    gives None: standardise before calling it then.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a tensor of shape (n, L) to (n, n_outputs); a :class:`ChunkedForward` is unwrapped.
    standardize : callable
        The per-row standardisation, in place on a float32 array (n, L), as
        :class:`StandardizedLinear` takes it.
    max_offset : float
        See :class:`StandardizedLinear`.
    inplace : bool
        Replace the layers in ``model`` itself instead of a deep copy (for a caller that
        owns the network, e.g. one just loaded from disk: saves ~15 ms).

    Returns
    -------
    torch.nn.Module or None
        The folded network in eval mode (a copy unless ``inplace``), or None.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astroreg.models import create_model
    >>> from astroreg.preprocess._spectra import standardize_rows_
    >>> net = create_model("residual_mlp", input_shapes={"flux": (50,)}, n_outputs=2, stem=8, blocks=[8],
    ...                    heads=[4]).inner.eval()
    >>> folded = fold_standardization(net, standardize_rows_)
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, (5, 50)).astype(np.float32)
    >>> want = net(torch.from_numpy(standardize_rows_(x.copy())))
    >>> bool(torch.allclose(folded(torch.from_numpy(x)), want, atol=1e-5))
    True
    """
    model = unwrap(model)
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # data-dependent control flow etc.: no fold, the caller standardises
        logger.info("fold_standardization: %s cannot be traced (%s); not folded", type(model).__name__, exc)
        return None
    inputs = [node for node in graph.nodes if node.op == "placeholder"]
    if len(inputs) != 1 or not inputs[0].users:
        return None
    targets = []
    for user in inputs[0].users:
        sub = model.get_submodule(user.target) if user.op == "call_module" else None
        if not isinstance(sub, nn.Linear) or user.args != (inputs[0],) or user.kwargs:
            return None
        targets.append(user.target)
    folded = (model if inplace else copy.deepcopy(model)).eval()
    for target in targets:
        folded.set_submodule(target, StandardizedLinear(folded.get_submodule(target), standardize,
                                                        max_offset=max_offset))
    return folded


class ChunkedForward(nn.Module):
    """Run a network on slices of the batch, so each layer's working set stays in cache.

    ``forward(x)`` is ``torch.cat([module(c) for c in x.split(chunk_size)])``: the same
    outputs and, through autograd, the same gradients as one call on the whole batch (up
    to float rounding and dropout's random masks, which are drawn per chunk). On the 2-core
    CPU machines a convolution over 48 or more stamps of 143 x 143 runs at about half the
    per-image speed of one over 16, which is what this buys back.

    The wrapper is invisible in checkpoints: :meth:`state_dict` has the wrapped network's
    keys (no ``module.`` prefix) and :meth:`load_state_dict` accepts them, also when the
    wrapper sits inside a LightningModule.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a tensor of shape (batch, ...) to one of shape (batch, ...), each sample
        independently of the others (no batch normalisation in training mode).
    chunk_size : int
        Largest slice of the batch given to ``module`` at once.
    """

    def __init__(self, module: nn.Module, *, chunk_size: int) -> None:
        super().__init__()
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
        self.module = module
        self.chunk_size = chunk_size
        self.register_state_dict_post_hook(_drop_module_prefix)
        self.register_load_state_dict_pre_hook(_add_module_prefix)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the wrapped network chunk by chunk.

        Parameters
        ----------
        x : torch.Tensor
            Tensor of shape (batch, ...).

        Returns
        -------
        torch.Tensor
            The wrapped network's output for the whole batch, shape (batch, ...).
        """
        if x.shape[0] <= self.chunk_size:
            return self.module(x)
        return torch.cat([self.module(part) for part in x.split(self.chunk_size)])


def _drop_module_prefix(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    inner = prefix + "module."
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner):]] = state_dict.pop(key)


def _add_module_prefix(
    module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
    missing_keys: list, unexpected_keys: list, error_msgs: list,
) -> None:
    inner = prefix + "module."
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix):]] = state_dict.pop(key)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside any :class:`ChunkedForward` wrappers.

    A dict-taking network prepared by :func:`prepare_for_training` holds the wrappers
    inside its :class:`~astroreg.models.SingleInput` adapters; they are taken out in
    place (the wrapper holds no weights) and the network itself is returned.
    """
    while isinstance(model, ChunkedForward):
        model = model.module
    for adapter in [m for m in model.modules() if isinstance(m, SingleInput)]:
        if isinstance(adapter.inner, ChunkedForward):
            adapter.inner = unwrap(adapter.inner)
    return model


def prepare_for_training(model: nn.Module, *, chunk_size: int = CPU_CHUNK) -> nn.Module:
    """Put an image network in its fastest training form for its device.

    On CPU, a network with 4-d (convolution) weights is converted in place to the
    channels-last memory format (about 2x on convolution, pooling and their gradients in
    oneDNN) and wrapped in :class:`ChunkedForward`, which feeds it ``chunk_size`` stamps at
    a time (another 1.4x at batch 64). Measured on the 2-core machines for ``paper_cnn``
    at batch 64 with Adam: 290 images/s plain, 650 channels-last, 910 both (780 through a
    Lightning ``Trainer``); ``torch.compile`` of the training step gained less than either
    (see ``docs/notes/cnn-cpu-speed.md``). Other networks, and any device but CPU, come
    back unchanged.

    Inputs in the default NCHW layout work; the first convolution converts them.

    A dict-taking network (from :func:`~astroreg.models.create_model`) is prepared inside:
    the tensor network of each of its :class:`~astroreg.models.SingleInput` adapters
    (one, or one per backbone of a fusion model) is converted and wrapped as above, in
    place, and ``model`` itself is returned; its ``state_dict`` keys do not change.

    Parameters
    ----------
    model : torch.nn.Module
        The network to train; its parameters already on their device.
    chunk_size : int
        Stamps per forward call inside a batch.

    Returns
    -------
    torch.nn.Module
        ``model`` itself, or (for networks without batch normalisation, whose statistics
        depend on the batch) a :class:`ChunkedForward` around it whose ``state_dict`` has
        the same keys. Give this to the optimiser and the LightningModule.

    Examples
    --------
    >>> from astroreg.models import create_model
    >>> from astroreg.models._fast import prepare_for_training
    >>> net = prepare_for_training(create_model("paper_cnn", input_shapes={"image": (1, 143, 143)}, n_outputs=1))
    """
    adapters = [m for m in model.modules() if isinstance(m, SingleInput)]
    if adapters:
        for adapter in adapters:
            adapter.inner = prepare_for_training(adapter.inner, chunk_size=chunk_size)
        return model
    params = list(model.parameters())
    if not params or params[0].device.type != "cpu" or not _to_channels_last(model):
        return model
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        # Chunks would change batch-norm statistics; keep whole batches.
        return model
    return ChunkedForward(model, chunk_size=chunk_size)


def count_flops(model: nn.Module, input_shape: Sequence[int] | Mapping[str, Sequence[int]]) -> int:
    """Floating-point operations of one forward pass, as counted by PyTorch.

    Uses :class:`torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as
    two operations for matrix products and convolutions and ignores cheap element-wise
    work (bias, activation, pooling).

    Parameters
    ----------
    model : torch.nn.Module
        The network; run once without gradients on zeros of its parameters' dtype and device.
    input_shape : sequence of int, or mapping of str to sequence of int
        Full input shape *including* the batch dimension, e.g. ``(1, 1, 143, 143)``; for a
        dict-taking network, one such shape per input, e.g. ``{"image": (1, 1, 143, 143)}``.

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
    x: Batch
    if isinstance(input_shape, Mapping):
        x = {k: torch.zeros(tuple(v), dtype=dtype, device=device) for k, v in input_shape.items()}
    else:
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
