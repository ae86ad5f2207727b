"""The fast inference/training helpers: same numbers as eager, clean fallbacks, cost probes."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from astroreg.models import SingleInput, _fast, create_model, unwrap_single
from astroreg.models._fast import (
    ChunkedForward,
    count_flops,
    matmul_gflops,
    optimize_for_inference,
    prepare_for_training,
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
    # 3-d input: ``auto`` keeps 2-d (dense) inputs eager without trying jit or compile
    fast = optimize_for_inference(net, torch.ones(3, 2, 4))
    assert fast.backend == "compile"
    for x in (torch.ones(3, 2, 4), -torch.ones(3, 2, 4)):
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


def _fusion() -> nn.Module:
    torch.manual_seed(0)
    return create_model("fusion_early", input_shapes={"image": (1, 24, 24), "photometry": (3,)},
                        input_kinds={"image": "images", "photometry": "tabular"}, n_outputs=2,
                        backbones={"image": {"name": "paper_cnn"}}, head=[8])


def _pairs(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randn((n, 1, 24, 24), generator=g), "photometry": torch.randn((n, 3), generator=g)}


@pytest.mark.parametrize("backend", ["auto", "jit", "eager"])
def test_multi_input_network_takes_dict_batches(backend):
    net = _fusion()
    fast = optimize_for_inference(net, _pairs(3), backend=backend)
    assert fast.backend == ("jit" if backend == "auto" else backend)
    assert fast.batch_size == _fast.CPU_CHUNK  # an image among the inputs: chunked like images
    x = _pairs(2 * _fast.CPU_CHUNK + 5, seed=1)  # two full chunks and a ragged one
    out = fast(x)
    assert out.shape == (2 * _fast.CPU_CHUNK + 5, 2)
    torch.testing.assert_close(out, _eager(net, x), rtol=1e-4, atol=1e-5)


def test_padded_chunks_of_dict_batches():
    net = _fusion().eval()
    fast = _fast.FastPredictor(net, backend="eager", batch_size=8, device=torch.device("cpu"), pad=True)
    x = _pairs(19, seed=2)  # 8 + 8 + 3, the last chunk padded with zero rows
    torch.testing.assert_close(fast(x), _eager(net, x), rtol=1e-5, atol=1e-6)


def test_dict_example_must_share_one_batch_size():
    with pytest.raises(ValueError, match=r"dict of such tensors with the same batch size.*'photometry': \(2, 3\)"):
        optimize_for_inference(_fusion(), {"image": torch.zeros(3, 1, 24, 24), "photometry": torch.zeros(2, 3)})


def test_single_input_adapter_and_its_inner_network_predict_alike():
    torch.manual_seed(0)
    net = create_model("paper_cnn", input_shapes={"image": SHAPE}, n_outputs=1)
    name, inner = unwrap_single(net)
    x = _images(5)
    by_tensor = optimize_for_inference(inner, x, backend="jit")
    by_dict = optimize_for_inference(net, {name: x}, backend="jit")
    torch.testing.assert_close(by_dict({name: x}), by_tensor(x), rtol=1e-5, atol=1e-6)


def _cnn24() -> nn.Module:
    torch.manual_seed(0)
    return create_model("paper_cnn", input_shapes={"image": (1, 24, 24)}, n_outputs=2)


@pytest.mark.parametrize("make", [_fusion, _cnn24])
def test_prepare_for_training_reaches_inside_dict_networks(make):
    """Each single-input network inside is chunked and channels-last; keys, outputs and gradients do not change."""
    plain, fast = make().eval(), make().eval()
    keys = list(fast.state_dict())
    assert prepare_for_training(fast) is fast
    adapters = [m for m in fast.modules() if isinstance(m, SingleInput)]
    assert any(isinstance(a.inner, ChunkedForward) for a in adapters)
    assert list(fast.state_dict()) == keys
    x = _pairs(40) if make is _fusion else {"image": _pairs(40)["image"]}
    y = torch.randn(40, 2, generator=torch.Generator().manual_seed(4))
    for net in (plain, fast):
        nn.functional.mse_loss(net(x), y).backward()
    for p_plain, p_fast in zip(plain.parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_plain.grad, rtol=1e-4, atol=1e-6)
    assert _fast.unwrap(fast) is fast
    assert not any(isinstance(m, ChunkedForward) for m in fast.modules())
    assert list(fast.state_dict()) == keys


def test_count_flops_of_a_dict_network():
    net = create_model("mlp", input_shapes={"photometry": (10,)}, n_outputs=5, hidden=[])
    assert count_flops(net, {"photometry": (7, 10)}) == 2 * 10 * 5 * 7
