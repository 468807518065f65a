"""mg.save / mg.load: safetensors round trips, files written by PyTorch, and bad files raising."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import nn


def _model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_state_dict_round_trip(tmp_path):
    source, target = _model(), _model()
    mg.save(source.state_dict(), tmp_path / "model.safetensors")
    target.load_state_dict(mg.load(tmp_path / "model.safetensors"))
    for a, b in zip(source.parameters(), target.parameters()):
        np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())


def test_nested_objects_keep_their_structure(tmp_path):
    obj = {
        "step": 3,
        "name": "run",
        "lr": 0.5,
        "values": [mg.ones(2), (mg.zeros(1, dtype=mg.int64), None)],
        "state": {0: {"buf": mg.arange(3)}},
        "flag": True,
    }
    mg.save(obj, tmp_path / "nested.safetensors")
    back = mg.load(tmp_path / "nested.safetensors")
    assert back["step"] == 3 and back["name"] == "run" and back["lr"] == 0.5 and back["flag"] is True
    assert isinstance(back["values"][1], tuple) and back["values"][1][1] is None
    assert 0 in back["state"]
    np.testing.assert_array_equal(back["state"][0]["buf"].cpu().numpy(), [0, 1, 2])
    assert back["values"][1][0].dtype == mg.int64


def test_a_file_written_by_pytorch_loads_into_the_module(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    save_file(theirs.state_dict(), tmp_path / "torch.safetensors")
    ours = _model()
    ours.load_state_dict(mg.load(tmp_path / "torch.safetensors"))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        ours(mg.tensor(x)).detach().cpu().numpy(), theirs(torch.tensor(x)).detach().cpu().numpy(), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("dtype", ["bfloat16", "float8_e4m3fn"])
def test_a_dtype_numpy_has_not_is_named_not_called_corrupt(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2, dtype=getattr(torch, dtype)), "b": torch.zeros(2)}, tmp_path / "half.safetensors")
    with pytest.raises(TypeError, match=r"has not: \{'w': '(BF16|F8_E4M3)'\}"):
        mg.load(tmp_path / "half.safetensors")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "bad header"])
def test_damaged_files_raise_and_load_nothing(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    mg.save(_model().state_dict(), path)
    data = path.read_bytes()
    damaged = {
        "truncated": data[: len(data) - 7],
        "garbage": b"\x00\x01not a checkpoint" * 10,
        "empty": b"",
        "bad header": data[:8] + b"[" + data[9:],
    }[damage]
    path.write_bytes(damaged)
    model = _model()
    before = [p.detach().cpu().numpy().copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="model.safetensors"):
        model.load_state_dict(mg.load(path))
    assert all(np.array_equal(a, p.detach().cpu().numpy()) for a, p in zip(before, model.parameters()))


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        mg.load("/nonexistent/model.safetensors")


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store a"):
        mg.save({"f": object()}, tmp_path / "x.safetensors")


def test_keys_whose_paths_coincide_keep_their_own_tensors(tmp_path):
    obj = {"a.b": {"c": mg.zeros(1)}, "a": {"b.c": mg.ones(1)}, 0: mg.full((1,), 2.0), "0": mg.full((1,), 3.0)}
    mg.save(obj, tmp_path / "paths.safetensors")
    back = mg.load(tmp_path / "paths.safetensors")
    assert back["a.b"]["c"].item() == 0 and back["a"]["b.c"].item() == 1
    assert back[0].item() == 2 and back["0"].item() == 3
    mg.save({"__metadata__": mg.ones(1)}, tmp_path / "reserved.safetensors")  # the header's own key in safetensors
    assert mg.load(tmp_path / "reserved.safetensors")["__metadata__"].item() == 1
