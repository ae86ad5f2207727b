"""astroreg's Conv1d: the one-channel training path equals torch.nn.Conv1d in values and gradients."""

import pytest
import torch
from torch import nn

from astroreg.models._conv import Conv1d


def _pair(in_channels, out_channels, kernel, **kw):
    torch.manual_seed(0)
    ours = Conv1d(in_channels, out_channels, kernel, **kw)
    ref = nn.Conv1d(in_channels, out_channels, kernel, **kw)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize("kernel", [1, 2, 5])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("padding", ["valid", 0])
def test_values_and_gradients_equal_torch(kernel, bias, padding):
    ours, ref = _pair(1, 8, kernel, bias=bias, padding=padding)
    x = torch.randn(5, 1, 23)
    g = torch.randn(5, 8, 23 - kernel + 1)
    y, y_ref = ours(x), ref(x)
    assert ours._fast()
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-5, rtol=1e-5)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, atol=1e-5, rtol=1e-5)


def test_input_gradient_and_gradcheck():
    torch.manual_seed(1)
    conv = Conv1d(1, 3, 4).double()
    x = torch.randn(2, 1, 9, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (x,))


@pytest.mark.parametrize("kw", [dict(in_channels=2), dict(padding="same"), dict(stride=2), dict(dilation=2)])
def test_other_layers_take_the_parent_path(kw):
    args = dict(in_channels=1, out_channels=4, kernel_size=3) | kw
    ours, ref = _pair(args.pop("in_channels"), args.pop("out_channels"), args.pop("kernel_size"), **args)
    assert not ours._fast()
    x = torch.randn(3, ours.in_channels, 16)
    torch.testing.assert_close(ours(x), ref(x))


def test_inference_is_the_parent_kernel():
    ours, ref = _pair(1, 4, 3)
    x = torch.randn(3, 1, 12)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))  # bit for bit: the same oneDNN kernel
