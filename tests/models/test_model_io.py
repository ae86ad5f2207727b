"""Model files: the named-input payload round-trips, old unnamed files still load, bad files are refused unread."""

from __future__ import annotations

import pickle

import pytest
import torch

from astroreg.models import create_model, load_model, save_model, unwrap_single

SHAPES = {"image": (1, 16, 16)}
KINDS = {"image": "images"}


class _Payload:
    """Unpickling it creates ``path``: the proof that a file's code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _saved_cnn(path, n_outputs: int = 2):
    torch.manual_seed(0)
    net = create_model("paper_cnn", input_shapes=SHAPES, input_kinds=KINDS, n_outputs=n_outputs, dropout=0.1)
    save_model(path, net, "paper_cnn", {"dropout": 0.1}, SHAPES, KINDS, n_outputs)
    return net.eval()


def _images(n: int = 5) -> dict[str, torch.Tensor]:
    return {"image": torch.randn((n, *SHAPES["image"]), generator=torch.Generator().manual_seed(1))}


def test_single_input_model_round_trips(tmp_path):
    path = tmp_path / "model.pt"
    net = _saved_cnn(path)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"model", "params", "input_shapes", "input_kinds", "n_outputs", "state_dict"}
    assert payload["input_shapes"] == {"image": (1, 16, 16)} and payload["input_kinds"] == KINDS
    assert all(k.startswith("inner.") for k in payload["state_dict"])
    loaded = load_model(path, input_shapes=SHAPES, input_kinds=KINDS, n_outputs=2)
    assert not loaded.training and unwrap_single(loaded)[0] == "image"
    x = _images()
    torch.testing.assert_close(loaded(x), net(x))


def test_fusion_model_round_trips(tmp_path):
    shapes = {"image": (1, 16, 16), "photometry": (3,)}
    kinds = {"image": "images", "photometry": "tabular"}
    params = {"backbones": {"image": {"name": "paper_cnn", "params": {"dropout": 0.0}}}, "head": [8],
              "dropout": 0.0}
    torch.manual_seed(0)
    net = create_model("fusion_early", input_shapes=shapes, input_kinds=kinds, n_outputs=1, **params).eval()
    save_model(tmp_path / "model.pt", net, "fusion_early", params, shapes, kinds, 1)
    loaded = load_model(tmp_path / "model.pt", input_shapes=shapes, input_kinds=kinds, n_outputs=1)
    x = {"image": torch.randn(4, 1, 16, 16), "photometry": torch.randn(4, 3)}
    torch.testing.assert_close(loaded(x), net(x))


def _old_file(path, net: torch.nn.Module, shape=(1, 16, 16)):
    """A model.pt as astroreg wrote it before inputs had names."""
    payload = {"model": "paper_cnn", "params": {"dropout": 0.1}, "input_shape": shape, "n_outputs": 2,
               "state_dict": dict(unwrap_single(net)[1].state_dict())}
    torch.save(payload, path)


def test_file_from_before_named_inputs_still_loads(tmp_path):
    net = _saved_cnn(tmp_path / "new.pt")
    _old_file(tmp_path / "old.pt", net)
    x = _images()
    loaded = load_model(tmp_path / "old.pt", input_shapes={"stamp": (1, 16, 16)}, input_kinds={"stamp": "images"},
                        n_outputs=2)
    assert unwrap_single(loaded)[0] == "stamp"
    torch.testing.assert_close(loaded({"stamp": x["image"]}), net(x))
    unnamed = load_model(tmp_path / "old.pt")  # no preprocessor to name it: "input", the network's one kind
    assert unwrap_single(unnamed)[0] == "input"
    torch.testing.assert_close(unnamed({"input": x["image"]}), net(x))


def test_old_file_is_still_checked(tmp_path):
    _old_file(tmp_path / "old.pt", _saved_cnn(tmp_path / "new.pt"), shape=(1, 32, 32))
    with pytest.raises(ValueError, match=r"input 'image' has shape \(1, 32, 32\), which differs from the "
                                         r"preprocessor's \(1, 16, 16\)"):
        load_model(tmp_path / "old.pt", input_shapes=SHAPES, input_kinds=KINDS)
    _old_file(tmp_path / "old.pt", _saved_cnn(tmp_path / "new.pt"), shape=(1, -3, 16))
    with pytest.raises(ValueError, match=r"old\.pt is truncated or not an astroreg model file .*positive integers"):
        load_model(tmp_path / "old.pt")


@pytest.mark.parametrize("given, message", [
    ({"input_shapes": {"image": (1, 32, 32)}},
     r"input 'image' has shape \(1, 16, 16\), which differs from the preprocessor's \(1, 32, 32\)"),
    ({"input_shapes": {"stamp": (1, 16, 16)}},
     r"the network's inputs \['image'\] differ from the preprocessor's \['stamp'\]"),
    ({"input_kinds": {"image": "spectra"}}, r"input 'image' has kind 'images', which differs from the preprocessor's"),
    ({"n_outputs": 3}, r"n_outputs 2 differs from the preprocessor's 3 target\(s\)"),
])
def test_file_that_disagrees_with_the_preprocessor_is_refused(tmp_path, given, message):
    _saved_cnn(tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"model\.pt is truncated or not an astroreg model file \(.*" + message):
        load_model(tmp_path / "model.pt", **given)


@pytest.mark.parametrize("change, message", [
    ({"model": "no_such_net"}, r"model 'no_such_net' is not one of"),
    ({"input_shapes": {"image": (1, -3, 16)}}, r"input 'image' has shape \(1, -3, 16\), not a shape of positive"),
    ({"input_shapes": {"image": (10**5, 10**5)}}, r"not a shape of positive integers"),
    ({"input_shapes": [(1, 16, 16)]}, r"is not a dict of named input shapes"),
    ({"input_kinds": {"image": 3}}, r"input_kinds \{'image': 3\} is not a dict of input names and kinds"),
    ({"input_kinds": {"stamp": "images"}}, r"input_kinds names \['stamp'\] but input_shapes names \['image'\]"),
    ({"input_kinds": {"image": "spectra"}}, r"weights do not fit network 'paper_cnn': recipe input 'image' is of kind"),
    ({"n_outputs": 0}, r"n_outputs 0 is not a positive integer"),
    ({"params": {"dropout": 0.2, "no_such_param": 1}}, r"weights do not fit network 'paper_cnn'"),
    ({"state_dict": "weights"}, r"state_dict is not a dict of named tensors"),
    ("shrink", r"weights do not fit network 'paper_cnn'"),
    ("unprefixed", r"weights do not fit network 'paper_cnn'"),
    ("not a dict", r"not the keys"),
])
def test_doctored_payload_is_refused(tmp_path, change, message):
    path = tmp_path / "model.pt"
    _saved_cnn(path)
    payload = torch.load(path, weights_only=True)
    if change == "shrink":
        key = next(iter(payload["state_dict"]))
        payload["state_dict"][key] = payload["state_dict"][key][:1]
    elif change == "unprefixed":  # a new-format file must carry the adapter's keys
        payload["state_dict"] = {k.removeprefix("inner."): v for k, v in payload["state_dict"].items()}
    elif change == "not a dict":
        payload = [1, 2, 3]
    else:
        payload.update(change)
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"model\.pt is truncated or not an astroreg model file \(.*" + message):
        load_model(path)


@pytest.mark.parametrize("cut", [0, 100, "half", -20])
def test_truncated_file_is_a_one_line_error(tmp_path, cut):
    path = tmp_path / "model.pt"
    _saved_cnn(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:cut])
    with pytest.raises(ValueError, match=r"model\.pt is truncated or not an astroreg model file.*train the run again"):
        load_model(path)


def test_file_holding_pickled_code_is_refused_unread(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"model": _Payload(str(marker))}))
    with pytest.raises(ValueError, match=r"model\.pt is truncated or not an astroreg model file \(it holds pickled"):
        load_model(path)
    assert not marker.exists()


def test_save_leaves_no_partial_file(tmp_path):
    _saved_cnn(tmp_path / "model.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
