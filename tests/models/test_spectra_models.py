import pytest
import torch
from torch import nn

from astroreg.models import create_model, unwrap_single
from astroreg.models._spectra import ResidualBlock


def _net(name: str, shape: tuple[int, ...], n_outputs: int, **params) -> nn.Module:
    """The tensor network of single-input model ``name`` (what prediction optimises)."""
    return unwrap_single(create_model(name, input_shapes={"flux": shape}, n_outputs=n_outputs, **params))[1]


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_paper_configuration_has_the_papers_parameter_count():
    net = _net("residual_mlp", (4000,), n_outputs=3)
    # The paper reports 542,771; our layer order reproduces it exactly.
    assert n_params(net) == 542_771
    assert [len([m for m in h if isinstance(m, nn.Linear)]) for h in net.heads] == [3, 2, 2]
    assert net(torch.zeros(2, 4000)).shape == (2, 3)


def test_heads_template_single_task_and_errors():
    net = _net("residual_mlp", (50,), n_outputs=2, heads=(16,))
    assert [[m.out_features for m in h if isinstance(m, nn.Linear)] for h in net.heads] == [[16, 1], [16, 1]]
    single = _net("residual_mlp", (50,), n_outputs=1, heads=((48, 32),))
    assert single(torch.randn(4, 50)).shape == (4, 1)
    with pytest.raises(ValueError, match=r"heads has 2 entries.*3 outputs"):
        _net("residual_mlp", (50,), n_outputs=3, heads=((16,), (8,)))
    with pytest.raises(ValueError, match=r"needs input_shape \(n_pixels,\).*got \(2, 50\)"):
        _net("residual_mlp", (2, 50), n_outputs=3)


def test_ablations_remove_skips_and_layer_norm():
    torch.manual_seed(0)
    full = _net("residual_mlp", (40,), n_outputs=3)
    assert any(isinstance(m, nn.LayerNorm) for m in full.modules())
    no_skip = _net("residual_mlp", (40,), n_outputs=3, skip=False)
    bare = _net("residual_mlp", (40,), n_outputs=3, skip=False, layer_norm=False)
    assert not any(isinstance(m, nn.LayerNorm) for m in bare.modules())
    for net in (no_skip, bare):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert blocks and all(b.shortcut is None for b in blocks)
        net.eval()
        x = torch.randn(5, 128)
        assert torch.equal(blocks[0](x), blocks[0].inner(x))
    # With skips the projection shortcut changes the block's output.
    block = next(m for m in full.modules() if isinstance(m, ResidualBlock)).eval()
    x = torch.randn(5, 128)
    assert not torch.allclose(block(x), block.inner(x))


def test_dnn_baseline_is_over_ten_times_larger():
    dnn = _net("dnn_li2017", (4000,), n_outputs=3)
    assert n_params(dnn) == 13_655_103  # the paper's 13.66M
    assert n_params(dnn) >= 10 * 542_771
    assert len(dnn.nets) == 3
    assert dnn(torch.zeros(2, 4000)).shape == (2, 3)


def test_starnet_cnn_shapes():
    net = _net("starnet_cnn", (4000,), n_outputs=3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(4, (8,)), (16, (8,))]
    # (4000 - 7 - 7) // 4 = 996 positions of 16 filters.
    assert net.features(torch.zeros(1, 4000)).shape == (1, 16 * 996)
    assert net(torch.zeros(2, 4000)).shape == (2, 3)
    with pytest.raises(ValueError, match="too few"):
        _net("starnet_cnn", (10,), n_outputs=3)
