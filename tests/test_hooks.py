"""Module hooks: forward pre-hooks and hooks (with kwargs, prepend, always_call), full backward
hooks and backward pre-hooks, handles, and the global hooks of nn.modules.module."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import nn
from nn.models.resnet import resnet_small
from nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook


class Scale(nn.Module):
    """x * y * k, with a keyword ``shift``: two tensor inputs and a number."""

    def forward(self, x, y, k, shift=0.0):
        return x * y * k + shift


def test_forward_hooks_extract_features_of_a_resnet():
    model = resnet_small(num_classes=3, in_channels=1, width=4, blocks=1).eval()
    features = {}
    handles = [
        getattr(model, f"layer{i}").register_forward_hook(lambda m, args, out, i=i: features.__setitem__(i, out))
        for i in (1, 2, 3)
    ]
    x = mg.randn(2, 1, 8, 8)
    model(x)
    assert {i: tuple(f.shape) for i, f in features.items()} == {1: (2, 4, 8, 8), 2: (2, 8, 4, 4), 3: (2, 16, 2, 2)}
    with mg.no_grad():
        np.testing.assert_allclose(
            features[3].detach().cpu().numpy(), model.features(x).detach().cpu().numpy(), rtol=1e-6
        )
    for handle in handles:
        handle.remove()
    features.clear()
    model(x)
    assert features == {}


def test_pre_hook_rewrites_the_input_and_hook_replaces_the_output():
    layer = nn.Linear(3, 2)
    x = mg.randn(4, 3)
    layer.register_forward_pre_hook(lambda m, args: args[0] * 2)  # one value: becomes (value,)
    weight, bias = layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy()
    np.testing.assert_allclose(layer(x).detach().cpu().numpy(), (x.cpu().numpy() * 2) @ weight.T + bias, rtol=1e-5)
    layer.register_forward_hook(lambda m, args, out: out * 0)
    assert not layer(x).detach().cpu().numpy().any()


def test_handle_remove_and_with_block():
    layer, calls = nn.Identity(), []
    handle = layer.register_forward_hook(lambda m, args, out: calls.append("hook"))
    layer(mg.ones(1))
    handle.remove()
    handle.remove()  # twice is harmless
    layer(mg.ones(1))
    with layer.register_forward_pre_hook(lambda m, args: calls.append("pre")):
        layer(mg.ones(1))
    layer(mg.ones(1))
    assert calls == ["hook", "pre"]


def test_prepend_orders_hooks():
    layer, calls = nn.Identity(), []
    layer.register_forward_hook(lambda m, a, o: calls.append("a"))
    layer.register_forward_hook(lambda m, a, o: calls.append("b"))
    layer.register_forward_hook(lambda m, a, o: calls.append("first"), prepend=True)
    layer.register_forward_pre_hook(lambda m, a: calls.append("pre-a"))
    layer.register_forward_pre_hook(lambda m, a: calls.append("pre-first"), prepend=True)
    layer(mg.ones(1))
    assert calls == ["pre-first", "pre-a", "first", "a", "b"]


def test_hooks_with_kwargs():
    module, seen = Scale(), []

    def pre(m, args, kwargs):
        return args, {**kwargs, "shift": 10.0}

    module.register_forward_pre_hook(pre, with_kwargs=True)
    module.register_forward_hook(lambda m, args, kwargs, out: seen.append((kwargs, out.item())), with_kwargs=True)
    out = module(mg.tensor(2.0), mg.tensor(3.0), 1, shift=1.0)
    assert out.item() == 16.0
    assert seen == [({"shift": 10.0}, 16.0)]
    module.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match="Scale: a forward pre-hook with kwargs must return None or a tuple"):
        module(mg.tensor(2.0), mg.tensor(3.0), 1)


def test_always_call_runs_when_forward_raises():
    calls = []
    layer = nn.Linear(3, 2)
    layer.register_forward_hook(lambda m, a, o: calls.append(("plain", o)))
    layer.register_forward_hook(lambda m, a, o: calls.append(("always", o)), always_call=True)
    with pytest.raises(RuntimeError):
        layer(mg.ones(2, 5))
    assert calls == [("always", None)]


def test_always_call_follows_pytorch_when_a_hook_or_pre_hook_raises():
    calls = []

    def fail(*args):
        calls.append("fail")
        raise ValueError("hook failed")

    layer = nn.Linear(3, 2)
    layer.register_forward_hook(fail, always_call=True)  # raises after forward: run once, not again
    layer.register_forward_hook(lambda m, a, o: calls.append(("always", tuple(o.shape))), always_call=True)
    with pytest.raises(ValueError, match="hook failed"):
        layer(mg.ones(1, 3))
    assert calls == ["fail", ("always", (1, 2))]  # the output so far, not None

    calls.clear()
    layer = nn.Linear(3, 2)
    layer.register_forward_pre_hook(fail)
    layer.register_forward_hook(lambda m, a, o: calls.append(("always", o)), always_call=True)
    with pytest.raises(ValueError, match="hook failed"):
        layer(mg.ones(1, 3))
    assert calls == ["fail", ("always", None)]

    layer = nn.Linear(3, 2)
    layer.register_forward_hook(fail, always_call=True)
    with pytest.warns(UserWarning, match="always_call=True raised"), pytest.raises(RuntimeError, match="Linear"):
        layer(mg.ones(2, 5))  # forward's error, not the hook's, reaches the caller


def test_global_hooks_fire_for_every_module_first():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    calls = []
    net[1].register_forward_hook(lambda m, a, o: calls.append("own"))
    with register_module_forward_pre_hook(lambda m, a: calls.append(f"pre {type(m).__name__}")), \
            register_module_forward_hook(lambda m, a, o: calls.append(f"post {type(m).__name__}")):  # fmt: skip
        net(mg.ones(1, 2))
    assert calls == ["pre Sequential", "pre Linear", "post Linear", "pre ReLU", "post ReLU", "own", "post Sequential"]
    calls.clear()
    net(mg.ones(1, 2))
    assert calls == ["own"]


def _linear_grads(layer, x, upstream):
    out = layer(x)
    out.backward(upstream)
    return x.grad.detach().cpu().numpy().copy(), layer.weight.grad.detach().cpu().numpy().copy()


def test_backward_hook_clips_the_input_gradient():
    mg.manual_seed(0)
    layer = nn.Linear(3, 2)
    x = mg.randn(4, 3, requires_grad=True)
    upstream = mg.randn(4, 2) * 5
    x_grad, w_grad = _linear_grads(layer, x, upstream)
    seen = []

    def clip(module, grad_input, grad_output):
        seen.append((module, len(grad_input), grad_output[0].detach().cpu().numpy()))
        return (grad_input[0].clamp(-0.1, 0.1),)

    layer.register_full_backward_hook(clip)
    x.grad = layer.weight.grad = None
    clipped_x, clipped_w = _linear_grads(layer, x, upstream)
    np.testing.assert_allclose(clipped_x, np.clip(x_grad, -0.1, 0.1), rtol=1e-6)
    np.testing.assert_allclose(clipped_w, w_grad, rtol=1e-6)  # the parameters' gradients are not grad_input
    assert seen[0][0] is layer and seen[0][1] == 1
    np.testing.assert_allclose(seen[0][2], upstream.detach().cpu().numpy())


def test_backward_pre_hook_scales_grad_output():
    layer = nn.Linear(3, 2)
    x = mg.randn(4, 3, requires_grad=True)
    upstream = mg.randn(4, 2)
    x_grad, w_grad = _linear_grads(layer, x, upstream)
    handle = layer.register_full_backward_pre_hook(lambda m, grad_output: (grad_output[0] * 3,))
    x.grad = layer.weight.grad = None
    scaled_x, scaled_w = _linear_grads(layer, x, upstream)
    np.testing.assert_allclose(scaled_x, 3 * x_grad, rtol=1e-5)
    np.testing.assert_allclose(scaled_w, 3 * w_grad, rtol=1e-5)
    handle.remove()
    x.grad = layer.weight.grad = None
    np.testing.assert_allclose(_linear_grads(layer, x, upstream)[0], x_grad, rtol=1e-6)


def test_backward_hook_sees_one_entry_per_positional_input():
    module, seen = Scale(), []
    module.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    x, y = mg.tensor([2.0], requires_grad=True), mg.tensor([3.0])  # y needs no gradient
    module(x, y, 4).sum().backward()
    (grad_input,) = seen
    assert len(grad_input) == 3 and grad_input[1] is None and grad_input[2] is None
    assert grad_input[0].item() == 12.0


def test_backward_hook_runs_when_no_input_requires_grad():
    layer, seen = nn.Linear(3, 2), []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, tuple(go[0].shape))))
    layer(mg.ones(4, 3)).sum().backward()
    assert seen == [((None,), (4, 2))]
    assert layer.weight.grad is not None


def test_no_hooks_means_forward_is_called_directly(monkeypatch):
    def fail(*args):
        raise AssertionError("the hook path ran without hooks")

    monkeypatch.setattr(nn.Module, "_call_with_hooks", fail)
    nn.Sequential(nn.Linear(2, 2), nn.ReLU())(mg.ones(1, 2))


def test_backward_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    x_np, y_np = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])

    def run(lib, module_base, x, y):
        class Gate(module_base):
            def forward(self, a, b, k):
                return a * b * k, a + b

        gate, record = Gate(), []
        gate.register_full_backward_pre_hook(lambda m, go: (go[0] * 2, go[1]))
        gate.register_full_backward_hook(lambda m, gi, go: record.append((gi, go)) or (gi[0] + 1, gi[1], None))
        out, total = gate(x, y, 3)
        (out.sum() + (total * total).sum()).backward()
        gi, go = record[0]
        arrays = [None if g is None else np.asarray(g.detach().cpu().numpy()) for g in (*gi, *go)]
        return arrays, x.grad.detach().cpu().numpy(), y.grad.detach().cpu().numpy()

    mine = run(mg, nn.Module, mg.tensor(x_np, requires_grad=True), mg.tensor(y_np, requires_grad=True))
    theirs = run(torch, torch.nn.Module, torch.tensor(x_np, requires_grad=True), torch.tensor(y_np, requires_grad=True))
    for a, b in zip(mine[0], theirs[0]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(mine[1], theirs[1])
    np.testing.assert_allclose(mine[2], theirs[2])


def test_backward_hook_on_a_module_that_works_in_place():
    relu, seen = nn.ReLU(inplace=True), []
    relu.register_full_backward_hook(lambda m, gi, go: seen.append((gi[0].cpu().numpy(), go[0].cpu().numpy())))
    a = mg.tensor([-1.0, 2.0], requires_grad=True)
    (relu(a * 3) * mg.tensor([1.0, 5.0])).sum().backward()
    np.testing.assert_allclose(a.grad.cpu().numpy(), [0.0, 15.0])
    np.testing.assert_allclose(seen[0][0], [0.0, 5.0])
    np.testing.assert_allclose(seen[0][1], [1.0, 5.0])
