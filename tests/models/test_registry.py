import pytest
import torch
from torch import nn

from astroreg.models import (
    SingleInput,
    _registry,
    check_model_inputs,
    create_model,
    get_model_entry,
    list_models,
    model_summary,
    register_model,
    unwrap_single,
)

SHAPES = {"images": (2, 24, 24), "spectra": (64,), "tabular": (7,)}

# Multi-input models need a configuration: name -> (input kinds, params).
MULTI = {
    "fusion_early": ({"image": "images", "flux": "spectra", "photometry": "tabular"},
                     {"backbones": {"image": {"name": "paper_cnn"}, "flux": {"name": "starnet_cnn"}}, "head": [16]}),
    "ensemble": ({"photometry": "tabular"}, {"model": "mlp", "params": {"hidden": [8]}, "members": 2}),
    "fusion_late": ({"image": "images", "photometry": "tabular"},
                    {"backbones": {"image": {"name": "conv_net", "params": {"channels": [4, 8]}}},
                     "learn_weights": True}),
}

# Single-input models whose defaults need longer inputs than SHAPES: name -> params for the test.
SMALL = {"pooled_cnn1d": {"conv": [[8, 3]], "dense": [16]}}  # the paper's 4 conv + pool 2 need >= 44 samples


def _cases():
    """(model, input kinds, params) for every registered model: each declared kind of a single-input one."""
    for name in list_models():
        entry = get_model_entry(name)
        if entry.multi_input:
            kinds, params = MULTI.get(name, (None, None))
            yield pytest.param(name, kinds, params, id=name)
        else:
            for kind in entry.input_kinds:
                yield pytest.param(name, {"x": kind}, SMALL.get(name, {}), id=f"{name}-{kind}")


@pytest.mark.parametrize("n_outputs", [3, 0])
@pytest.mark.parametrize("name, kinds, params", list(_cases()))
def test_every_registered_model_forward_shape_finite_and_gradients(name, kinds, params, n_outputs):
    if kinds is None:
        pytest.fail(f"no test configuration for multi-input model {name!r}; add one to MULTI")
    missing = sorted(set(kinds.values()) - set(SHAPES))
    if missing:
        pytest.fail(f"no test input shape for input kind(s) {missing}; add them to SHAPES")
    torch.manual_seed(0)
    shapes = {k: SHAPES[kind] for k, kind in kinds.items()}
    net = create_model(name, input_shapes=shapes, input_kinds=kinds, n_outputs=n_outputs, **params)
    x = {k: torch.randn(5, *shape) for k, shape in shapes.items()}
    y = net(x)
    width = net.out_features
    assert isinstance(width, int) and width >= 1
    assert y.shape == (5, n_outputs or width)
    assert torch.isfinite(y).all()
    y.pow(2).sum().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"


@pytest.mark.parametrize("name", [n for n in list_models() if not get_model_entry(n).multi_input])
def test_headless_network_is_the_full_one_without_its_output_layer(name):
    """n_outputs=0 drops the head only: the remaining layers are those of the full network."""
    kind = get_model_entry(name).input_kinds[0]
    full = create_model(name, input_shapes={"x": SHAPES[kind]}, n_outputs=1)
    body = create_model(name, input_shapes={"x": SHAPES[kind]}, n_outputs=0)
    assert isinstance(body, SingleInput) and body.out_features == body.inner.out_features
    full_keys, body_keys = set(full.state_dict()), set(body.state_dict())
    assert body_keys < full_keys
    n_full = sum(p.numel() for p in full.parameters())
    assert sum(p.numel() for p in body.parameters()) < n_full


def test_single_input_adapter_reads_its_input_by_name():
    net = create_model("mlp", input_shapes={"photometry": (5,)}, n_outputs=2, hidden=[4]).eval()
    assert isinstance(net, SingleInput) and net.name == "photometry" and net.out_features == 2
    name, inner = unwrap_single(net)
    assert name == "photometry" and inner is net.inner
    x = torch.randn(3, 5)
    torch.testing.assert_close(net({"photometry": x, "unused": torch.zeros(3, 9)}), inner(x))
    assert all(k.startswith("inner.") for k in net.state_dict())
    fusion = create_model("fusion_late", input_shapes={"photometry": (5,)}, input_kinds={"photometry": "tabular"},
                          n_outputs=1)
    assert unwrap_single(fusion) is None


def test_unknown_model_and_parameter_are_named():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000'.*paper_cnn"):
        create_model("resnet9000", input_shapes={"x": (1, 8, 8)}, n_outputs=1)
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['widht'\].*allowed"):
        create_model("paper_cnn", input_shapes={"x": (1, 143, 143)}, n_outputs=1, widht=3)


def test_bad_shapes_outputs_and_input_counts_are_refused():
    with pytest.raises(ValueError, match=r"needs input_shapes, a non-empty mapping"):
        create_model("mlp", input_shapes={}, n_outputs=1)
    with pytest.raises(ValueError, match=r"input 'x' has shape \(0, 3\)"):
        create_model("mlp", input_shapes={"x": (0, 3)}, n_outputs=1)
    with pytest.raises(ValueError, match=r"n_outputs must be a non-negative integer.*-1"):
        create_model("mlp", input_shapes={"x": (3,)}, n_outputs=-1)
    with pytest.raises(ValueError, match=r"model 'mlp' takes one input, but got 2: \['a', 'b'\].*fusion_early"):
        create_model("mlp", input_shapes={"a": (3,), "b": (4,)}, n_outputs=1)
    with pytest.raises(ValueError, match=r"input_kinds names \['y'\] but input_shapes names \['x'\]"):
        create_model("mlp", input_shapes={"x": (3,)}, input_kinds={"y": "tabular"}, n_outputs=1)
    with pytest.raises(ValueError, match=r"'fusion_early' takes several inputs and needs input_kinds"):
        create_model("fusion_early", input_shapes={"x": (3,)}, n_outputs=1)


def test_check_model_inputs_names_the_wrong_input():
    check_model_inputs("paper_cnn", {"image": "images"})
    check_model_inputs("mlp", {"flux": "spectra"})
    with pytest.raises(ValueError, match=r"recipe input 'flux' is of kind 'spectra', but model 'paper_cnn' takes "
                                         r"images; models for spectra: \[.*'residual_mlp'"):
        check_model_inputs("paper_cnn", {"flux": "spectra"})
    with pytest.raises(ValueError, match=r"model 'starnet_cnn' takes one input, but the recipe has 2"):
        check_model_inputs("starnet_cnn", {"flux": "spectra", "photometry": "tabular"})
    with pytest.raises(ValueError, match=r"was given no inputs"):
        check_model_inputs("mlp", {})
    # create_model checks the kinds when it is given them
    with pytest.raises(ValueError, match=r"recipe input 'cube' is of kind 'ifu'"):
        create_model("mlp", input_shapes={"cube": (3,)}, input_kinds={"cube": "ifu"}, n_outputs=1)


def test_list_models_by_kind_includes_multi_kind_and_any_kind_models():
    assert "paper_cnn" in list_models("images") and "mlp" not in list_models("images")
    assert {"mlp", "residual_mlp", "starnet_cnn"} <= set(list_models("spectra"))
    assert {"mlp", "fusion_early", "fusion_late"} <= set(list_models("tabular"))
    assert get_model_entry("mlp").input_kind == "tabular/spectra"
    assert get_model_entry("fusion_early").input_kind == "any, several inputs"


def test_register_model_keeps_the_one_kind_shorthand_and_checks_builders(monkeypatch):
    monkeypatch.setattr(_registry, "_BUILDERS", dict(_registry._BUILDERS))

    @register_model(input_kind="tabular")
    def toy_linear(*, input_shape, n_outputs):
        """A toy."""
        return nn.Sequential(nn.Linear(input_shape[0], n_outputs or 1))  # no out_features: breaks the interface

    entry = get_model_entry("toy_linear")
    assert entry.input_kinds == ("tabular",) and entry.description == "A toy." and not entry.multi_input
    assert create_model("toy_linear", input_shapes={"x": (3,)}, n_outputs=2).out_features == 2
    with pytest.raises(ValueError, match=r"builder of model 'toy_linear' broke the model interface.*out_features"):
        create_model("toy_linear", input_shapes={"x": (3,)}, n_outputs=0)
    with pytest.raises(ValueError, match="already registered"):
        register_model("toy_linear", input_kinds=("tabular",))(toy_linear)
    with pytest.raises(ValueError, match="declares no input kinds"):
        register_model("toy_2")(toy_linear)
    with pytest.raises(ValueError, match="not both"):
        register_model("toy_3", input_kind="tabular", input_kinds=("images",))(toy_linear)


def test_paper_cnn_matches_the_paper():
    net = unwrap_single(create_model("paper_cnn", input_shapes={"image": (1, 143, 143)}, n_outputs=1))[1]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [12, 24]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    # After two 2x2 poolings the map is (24, 35, 35), as the paper states.
    assert net.features(torch.zeros(1, 1, 143, 143)).shape == (1, 24, 35, 35)
    dense = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(24 * 35 * 35, 64), (64, 1)]
    n = sum(p.numel() for p in net.parameters())
    text = model_summary("paper_cnn", {"image": (1, 143, 143)}, 1)
    assert text.splitlines()[-1] == f"trainable parameters: {n}"
    body = create_model("paper_cnn", input_shapes={"image": (1, 143, 143)}, n_outputs=0)
    assert body.out_features == 64


def test_model_summary_of_a_fusion_model():
    kinds, params = MULTI["fusion_early"]
    shapes = {k: SHAPES[kind] for k, kind in kinds.items()}
    text = model_summary("fusion_early", shapes, 2, params, kinds)
    net = create_model("fusion_early", input_shapes=shapes, input_kinds=kinds, n_outputs=2, **params)
    assert text.splitlines()[-1] == f"trainable parameters: {sum(p.numel() for p in net.parameters())}"
    assert "backbones.image.inner" in text
