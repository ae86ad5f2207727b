"""The fast inference/training helpers: same numbers as eager, clean fallbacks, cost probes."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from astroreg.models import create_model, unwrap_single
from astroreg.models import _fast
from astroreg.models._fast import (
    ChunkedForward, count_flops, matmul_gflops, optimize_for_inference, prepare_for_training,
)

SHAPE = (1, 143, 143)


def _net(name: str, shape: tuple[int, ...], n_outputs: int, **params) -> nn.Module:
    """The tensor network of single-input model ``name`` (what prediction optimises)."""
    return unwrap_single(create_model(name, input_shapes={"image": shape}, n_outputs=n_outputs, **params))[1]


def _paper_cnn() -> nn.Module:
    torch.manual_seed(0)
    return _net("paper_cnn", SHAPE, n_outputs=1)


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *SHAPE), generator=g)


def _eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        return model(x)


class SignSwitch(nn.Module):
    """Python control flow on a tensor value: a trace would freeze one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return self.lin(x)
        return -self.lin(x)


def test_auto_picks_jit_for_paper_cnn():
    net = _paper_cnn()
    fast = optimize_for_inference(net, _images(3))
    assert fast.backend == "jit"
    assert fast.batch_size == _fast.CPU_CHUNK
    x = _images(2 * _fast.CPU_CHUNK + 5, seed=1)  # two full chunks and a ragged one
    torch.testing.assert_close(fast(x), _eager(net, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["jit", "eager"])
def test_paper_cnn_matches_eager(backend):
    net = _paper_cnn()
    fast = optimize_for_inference(net, _images(8), backend=backend, batch_size=8)
    assert fast.backend == backend
    x = _images(8, seed=1)
    torch.testing.assert_close(fast(x), _eager(net, x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_paper_cnn_compiled_matches_eager_on_ragged_batches():
    net = _paper_cnn()
    fast = optimize_for_inference(net, _images(8), backend="compile", batch_size=8)
    assert fast.backend == "compile"
    x = _images(19, seed=1)  # 8 + 8 + 3: the last chunk is padded for the fixed-shape graph
    out = fast(x)
    assert out.shape == (19, 1)
    torch.testing.assert_close(out, _eager(net, x), rtol=1e-4, atol=1e-5)


def test_ragged_batches_are_chunked():
    net = _paper_cnn()
    fast = optimize_for_inference(net, _images(4), backend="jit", batch_size=4)
    x = _images(11, seed=2)
    out = fast(x)
    assert out.shape == (11, 1)
    torch.testing.assert_close(out, _eager(net, x), rtol=1e-4, atol=1e-5)


def test_caller_model_is_left_alone():
    net = _paper_cnn().train()
    optimize_for_inference(net, _images(2), backend="eager")
    assert net.training
    assert net.features[0].weight.is_contiguous()


def test_untraceable_model_falls_back_to_eager(caplog):
    net = SignSwitch()
    with caplog.at_level(logging.WARNING, logger=_fast.__name__):
        fast = optimize_for_inference(net, torch.ones(3, 4), backend="jit")
    assert fast.backend == "eager"
    assert "jit path failed" in caplog.text
    assert not fast.training
    for x in (torch.ones(5, 4), -torch.ones(5, 4)):  # both branches still taken
        torch.testing.assert_close(fast(x), _eager(net, x))


def test_failing_compile_falls_back(monkeypatch, caplog):
    def broken(model, example):
        raise RuntimeError("no working C++ compiler")

    monkeypatch.setitem(_fast._BUILDERS, "jit", broken)
    monkeypatch.setitem(_fast._BUILDERS, "compile", broken)
    net = _paper_cnn()
    with caplog.at_level(logging.WARNING, logger=_fast.__name__):
        fast = optimize_for_inference(net, _images(4))
    assert fast.backend == "eager"
    assert "jit path failed" in caplog.text and "compile path failed" in caplog.text
    assert "no working C++ compiler" in caplog.text
    x = _images(6, seed=3)
    torch.testing.assert_close(fast(x), _eager(net, x), rtol=1e-4, atol=1e-5)


def test_wrong_fast_output_is_rejected(monkeypatch, caplog):
    monkeypatch.setitem(_fast._BUILDERS, "jit", lambda model, example: (lambda x: model(x) * 1.01, False))
    net = _paper_cnn()
    with caplog.at_level(logging.WARNING, logger=_fast.__name__):
        fast = optimize_for_inference(net, _images(4), backend="jit")
    assert fast.backend == "eager"
    assert "differs from eager" in caplog.text


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown backend 'tvm'; allowed"):
        optimize_for_inference(nn.Linear(2, 1), torch.ones(1, 2), backend="tvm")
    with pytest.raises(ValueError, match="leading batch dimension"):
        optimize_for_inference(nn.Linear(2, 1), torch.tensor(1.0))


def test_prepare_for_training_uses_channels_last_with_same_gradients():
    plain = _paper_cnn().eval()  # eval: no dropout, so both runs are deterministic
    fast = prepare_for_training(_paper_cnn()).eval()
    assert isinstance(fast, ChunkedForward)
    assert fast.module.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    x, y = _images(40), torch.randn(40, 1, generator=torch.Generator().manual_seed(4))
    for net in (plain, fast):
        nn.functional.mse_loss(net(x), y).backward()
    for p_plain, p_fast in zip(plain.parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_plain.grad, rtol=1e-4, atol=1e-6)


def test_predictor_refuses_training_mode():
    fast = optimize_for_inference(nn.Linear(2, 1), torch.ones(1, 2), backend="eager")
    assert not fast.training
    with pytest.raises(RuntimeError, match="inference-only"):
        fast.train()


@pytest.mark.slow
def test_compile_rescues_an_untraceable_model():
    net = SignSwitch()
    fast = optimize_for_inference(net, torch.ones(3, 4))
    assert fast.backend == "compile"
    for x in (torch.ones(5, 4), -torch.ones(5, 4)):
        torch.testing.assert_close(fast(x), _eager(net, x))


def test_chunked_forward_is_invisible_in_checkpoints():
    plain = _paper_cnn()
    wrapped = ChunkedForward(_paper_cnn(), chunk_size=3)
    assert list(wrapped.state_dict()) == list(plain.state_dict())

    parent_plain, parent_wrapped = nn.ModuleDict({"backbone": plain}), nn.ModuleDict({"backbone": wrapped})
    assert list(parent_wrapped.state_dict()) == list(parent_plain.state_dict())

    torch.manual_seed(5)
    other = _net("paper_cnn", SHAPE, n_outputs=1)
    parent_wrapped.load_state_dict({f"backbone.{k}": v for k, v in other.state_dict().items()})
    parent_plain.load_state_dict(parent_wrapped.state_dict())
    x = _images(7)
    torch.testing.assert_close(_eager(wrapped, x), _eager(other, x))
    torch.testing.assert_close(_eager(plain, x), _eager(other, x))


def test_optimize_unwraps_a_prepared_model():
    net = prepare_for_training(_paper_cnn())
    fast = optimize_for_inference(net, _images(2), backend="eager")
    assert not isinstance(fast.fn, ChunkedForward)


def test_chunked_forward_rejects_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size must be a positive integer; got 0"):
        ChunkedForward(nn.Linear(2, 1), chunk_size=0)


def test_prepare_for_training_leaves_dense_nets_alone():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert prepare_for_training(net) is net


def test_count_flops_of_linear():
    batch, n_in, n_out = 7, 10, 5
    assert count_flops(nn.Linear(n_in, n_out), (batch, n_in)) == 2 * n_in * n_out * batch


def test_count_flops_of_paper_cnn():
    # two 3x3 'same' convolutions (143^2 x 12 x 9 and 71^2 x 24 x 12 x 9 multiply-adds)
    # plus the dense head (29400 x 64 + 64 x 1)
    expected = 2 * (143 * 143 * 12 * 9 + 71 * 71 * 24 * 12 * 9 + 29400 * 64 + 64)
    assert count_flops(_paper_cnn(), (1, *SHAPE)) == expected


def test_matmul_gflops_is_a_positive_rate():
    rate = matmul_gflops(256, repeats=3)
    assert 0.1 < rate < 1e6
    with pytest.raises(ValueError, match="must be positive"):
        matmul_gflops(0)


def test_dense_inputs_are_not_chunked_by_default():
    """Spectra and tables (2-d inputs) go through in whole batches, eagerly under auto."""
    torch.manual_seed(0)
    net = _net("residual_mlp", (64,), n_outputs=3, stem=16, blocks=[8], heads=[[4], [4], [4]])
    x = torch.randn(37, 64)
    fast = optimize_for_inference(net, x[:20])
    assert fast.batch_size is None and fast.backend == "eager"
    torch.testing.assert_close(fast(x), _eager(net, x), rtol=1e-5, atol=1e-6)
    jit = optimize_for_inference(net, x[:20], backend="jit")
    assert jit.batch_size is None and jit.backend == "jit"
    torch.testing.assert_close(jit(x), _eager(net, x), rtol=1e-5, atol=1e-6)
