"""nn.Module: registration, traversal, modes, to(), state_dict and load_state_dict, containers."""

from __future__ import annotations

import copy
import gc

import numpy as np
import pytest

import minigrad as mg
import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)
        self.scale = nn.Parameter(mg.ones(1))
        self.register_buffer("count", mg.zeros(1, dtype=mg.int64))
        self.register_buffer("scratch", mg.zeros(3), persistent=False)

    def forward(self, x):
        return self.head(self.features(x)) * self.scale


def test_registration_and_names_follow_pytorch():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale",
        "features.0.weight",
        "features.0.bias",
        "head.weight",
        "head.bias",
    ]
    assert list(net.state_dict()) == [
        "scale",
        "count",
        "features.0.weight",
        "features.0.bias",
        "head.weight",
        "head.bias",
    ]
    assert [n for n, _ in net.named_buffers()] == ["count", "scratch"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1", "head"]
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert net.get_submodule("features.0") is net.features[0]


def test_state_dict_keys_match_an_equivalent_torch_model():
    torch = pytest.importorskip("torch")

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
            self.head = torch.nn.Linear(8, 2)
            self.scale = torch.nn.Parameter(torch.ones(1))
            self.register_buffer("count", torch.zeros(1, dtype=torch.int64))
            self.register_buffer("scratch", torch.zeros(3), persistent=False)

    assert list(Net().state_dict()) == list(TorchNet().state_dict())


def test_reassigning_and_deleting_attributes():
    net = Net()
    net.head = nn.Identity()
    assert "head.weight" not in net.state_dict()
    del net.scale
    assert "scale" not in dict(net.named_parameters())
    net.register_parameter("p", nn.Parameter(mg.ones(2)))
    with pytest.raises(TypeError, match="as parameter"):
        net.p = mg.ones(2)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing  # noqa: B018


def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(mg.randn(2, 3))
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:")
    assert not nn.Parameter(mg.zeros(2), requires_grad=False).requires_grad


def test_train_eval_and_zero_grad():
    net = Net()
    assert net.eval() is net and not net.features[1].training
    assert net.train() is net and net.features[1].training
    net(mg.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_to_keeps_parameter_identity_and_integer_buffers():
    net = Net()
    before = [id(p) for p in net.parameters()]
    assert net.to(mg.float64) is net
    assert [id(p) for p in net.parameters()] == before
    assert all(p.dtype == mg.float64 for p in net.parameters())
    assert net.count.dtype == mg.int64


def _snapshot(module):
    return {k: v.cpu().numpy().copy() for k, v in module.state_dict().items()}


def test_load_state_dict_round_trip_and_arrays():
    source, target = Net(), Net()
    result = target.load_state_dict({k: v.cpu().numpy() for k, v in source.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in _snapshot(source).items():
        np.testing.assert_array_equal(target.state_dict()[key].cpu().numpy(), value)


def test_load_state_dict_lists_every_problem_and_loads_nothing():
    net = Net()
    before = _snapshot(net)
    state = {k: v.cpu().numpy() for k, v in Net().state_dict().items()}
    del state["head.bias"]
    state["extra"] = np.zeros(2)
    state["head.weight"] = np.zeros((3, 8), np.float32)
    state["count"] = np.zeros(1, np.float32)
    with pytest.raises(RuntimeError) as error:
        net.load_state_dict(state)
    message = str(error.value)
    for needle in (
        '"head.bias"',
        '"extra"',
        "size mismatch for head.weight",
        "dtype mismatch for count",
        "nothing was loaded",
    ):
        assert needle in message
    after = _snapshot(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_load_state_dict_non_strict_reports_keys():
    net = Net()
    state = {k: v for k, v in Net().state_dict().items() if k != "scale"}
    state["extra"] = mg.zeros(1)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["scale"] and unexpected == ["extra"]


def test_load_state_dict_invalidates_graphs_that_saved_the_old_weights():
    net = nn.Linear(3, 3)
    out = (net(mg.randn(2, 3, requires_grad=True)) ** 2).sum()
    net.load_state_dict(nn.Linear(3, 3).state_dict())
    with pytest.raises(RuntimeError, match="modified in place"):
        out.backward()


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    seq.append(nn.Identity())
    assert len(list(seq)) == 4
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(list(layers.parameters())) == 6
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1)})
    assert set(heads.keys()) == {"a", "b"} and len(list(heads.parameters())) == 4
    with pytest.raises(IndexError):
        seq[7]  # noqa: B018
    assert nn.Flatten()(mg.zeros(2, 3, 4)).shape == (2, 12)
    assert nn.Unflatten(1, (3, 4))(mg.zeros(2, 12)).shape == (2, 3, 4)


def test_shared_parameters_are_counted_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2


def test_remove_duplicate_false_lists_shared_parameters_under_every_name():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    names = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_forward_hooks():
    net = nn.Linear(2, 2)
    seen = []
    handle = net.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    pre = net.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    out = net(mg.ones(3, 2))
    np.testing.assert_allclose(out.detach().cpu().numpy(), np.broadcast_to(net.bias.detach().cpu().numpy(), (3, 2)))
    handle.remove()
    pre.remove()
    net(mg.ones(3, 2))
    assert seen == [(3, 2)]


def test_repr_like_pytorch():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    assert text == "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n)"


def test_deepcopy_gives_independent_parameters():
    net = Net()
    twin = copy.deepcopy(net)
    assert all(a is not b for a, b in zip(net.parameters(), twin.parameters()))
    np.testing.assert_array_equal(net.head.weight.detach().cpu().numpy(), twin.head.weight.detach().cpu().numpy())
    assert isinstance(twin.head.weight, nn.Parameter)


def _live_tensors() -> int:
    gc.collect()
    return sum(isinstance(o, mg.Tensor) for o in gc.get_objects())


def test_training_steps_leave_no_tensors_alive():
    mg.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    optimizer = nn.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = mg.randn(32, 8), mg.randn(32, 4)

    def step():
        optimizer.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        optimizer.step()

    step()
    baseline = _live_tensors()
    for _ in range(5):
        step()
    assert _live_tensors() == baseline


@pytest.mark.parametrize("owner", ["module", "optimizer"])
def test_zero_grad_without_none_zeroes_the_gradient_in_place(owner):
    model = nn.Linear(3, 2)
    model(mg.randn(4, 3)).sum().backward()
    grad = model.weight.grad
    if owner == "module":
        model.zero_grad(set_to_none=False)
    else:
        nn.optim.SGD(model.parameters(), lr=0.1).zero_grad(set_to_none=False)
    assert model.weight.grad is grad  # the same tensor, as PyTorch keeps it
    assert not grad.cpu().numpy().any()


def test_bad_groups_stride_and_step_size_are_named():
    with pytest.raises(ValueError, match=r"Conv2d: groups must be a positive integer, got 0"):
        nn.Conv2d(4, 6, 3, groups=0)
    for pool in (nn.MaxPool2d(2, stride=0), nn.AvgPool2d(2, stride=0)):
        with pytest.raises((ValueError, RuntimeError), match="stride"):
            pool(mg.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer, got 0"):
        nn.optim.lr_scheduler.StepLR(nn.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), 0)
