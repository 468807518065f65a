"""What a model costs: parameters, FLOPs and activation memory per layer, the memory a training
step needs by formula, and the peak it really takes; and receptive fields, by formula and by
backpropagating one output pixel.
"""

from __future__ import annotations

import math
import tracemalloc
from dataclasses import dataclass, field

import minigrad as mg
import minigrad.functional as F
from nn.module import Module

BYTES = {"float16": 2, "float32": 4, "float64": 8}


@dataclass
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple
    params: int
    flops: int  # multiply-adds count as 2


@dataclass
class Summary:
    layers: list = field(default_factory=list)
    params: int = 0
    trainable: int = 0
    flops: int = 0  # forward, per batch
    activations: int = 0  # elements of every layer output, per batch

    def memory_formula(self, optimizer_states: int = 1, bytes_per_value: int = 4) -> int:
        """Bytes a training step needs: weights, gradients, optimizer state (1 per weight for SGD with
        momentum, 2 for Adam) and the activations kept for backward."""
        return bytes_per_value * ((2 + optimizer_states) * self.params + self.activations)

    def table(self) -> str:
        rows = [f"{'layer':<32} {'type':<20} {'output':<20} {'params':>10} {'MFLOPs':>10}"]
        for layer in self.layers:
            rows.append(
                f"{layer.name:<32} {layer.kind:<20} {str(layer.output_shape):<20} {layer.params:>10,} "
                f"{layer.flops / 1e6:>10.2f}"
            )
        rows.append(
            f"total: {self.params:,} parameters ({self.trainable:,} trainable), "
            f"{self.flops / 1e6:.1f} MFLOPs forward, {self.activations:,} activation values"
        )
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()


def _flops(module: Module, inputs: tuple, output: mg.Tensor) -> int:
    kind = type(module).__name__
    out = output.numel()
    if kind in ("Conv1d", "Conv2d", "ConvTranspose2d", "DeformConv2d"):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        if kind == "ConvTranspose2d":  # each input value meets every kernel value once
            return 2 * inputs[0].numel() * module.out_channels // module.groups * math.prod(module.kernel_size)
        return 2 * out * per_output
    if kind == "Linear":
        return 2 * out * module.in_features
    if kind == "MultiheadAttention":
        return 0  # counted through its out_proj and the projections below
    return out  # elementwise layers: about one operation per output value


def summary(model: Module, *inputs: mg.Tensor) -> Summary:
    """Run ``model(*inputs)`` once, recording every leaf layer's output shape, parameters and FLOPs."""
    result = Summary()
    handles = []

    def record(name):
        def hook(module, args, output):
            first = output[0] if isinstance(output, tuple) else output
            if not isinstance(first, mg.Tensor):
                return
            params = sum(p.numel() for p in module.parameters(recurse=False))
            info = LayerInfo(name, type(module).__name__, tuple(first.shape), params, _flops(module, args, first))
            result.layers.append(info)
            result.flops += info.flops
            result.activations += first.numel()

        return hook

    for name, module in model.named_modules():  # the leaf layers (the model itself when it is one)
        if not list(module.children()) or type(module).__name__ == "MultiheadAttention":
            handles.append(module.register_forward_hook(record(name or type(module).__name__)))
    was_training = model.training
    model.eval()  # a summary must not move batch norm's running statistics (or draw dropout masks)
    try:
        with mg.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    result.params = sum(p.numel() for p in model.parameters())
    result.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return result


def measured_step_peak(model: Module, inputs: mg.Tensor, targets: mg.Tensor, optimizer) -> int:
    """Peak bytes allocated during one training step (NumPy reports its arrays to tracemalloc), on
    top of what was allocated before it (weights, inputs and optimizer state that already exist)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


# --------------------------------------------------------------------- receptive field
def receptive_field(layers: list) -> list:
    """Analytic receptive field after each layer of a chain of (kernel, stride, dilation) triples.

    Returns (size, jump) per layer: size r_l = r_{l-1} + (k_l - 1) * d_l * j_{l-1}, where the jump
    j_l = j_{l-1} * s_l is the distance in input pixels between neighbouring outputs.
    """
    size, jump, out = 1, 1, []
    for kernel, stride, dilation in layers:
        size += (kernel - 1) * dilation * jump
        jump *= stride
        out.append((size, jump))
    return out


def conv_layers(model: Module) -> list:
    """The (kernel, stride, dilation) of every conv and pooling layer of ``model``, in order."""
    found = []
    for module in model.modules():
        kind = type(module).__name__
        if kind in ("Conv2d", "DeformConv2d"):
            found.append((module.kernel_size[0], module.stride[0], module.dilation[0]))
        elif kind in ("MaxPool2d", "AvgPool2d"):
            k, s = module.kernel_size, module.stride
            k, s = (k if isinstance(k, int) else k[0]), (s if isinstance(s, int) else s[0])
            d = getattr(module, "dilation", 1)
            found.append((k, s, d if isinstance(d, int) else d[0]))
    return found


def empirical_receptive_field(model: Module, input_shape: tuple, threshold: float = 0.0) -> tuple:
    """Height and width of the input region whose pixels change the centre output pixel: the
    support of the gradient of that one pixel with respect to the input.

    model: (1, C, H, W) -> (1, C', H', W'). Weights are replaced by positive constants for the
    measurement (so no gradient cancels by chance) and restored afterwards. A max pool passes the
    gradient to one pixel per window only, so through max pools this measures less than the formula.
    """
    saved = {name: p.data.copy() for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    try:
        with mg.no_grad():
            for p in model.parameters():
                p.fill_(1.0 / max(p.numel() ** 0.5, 1))
        x = mg.ones(*input_shape, requires_grad=True)
        out = model(x)
        h, w = out.shape[-2] // 2, out.shape[-1] // 2
        out[..., h, w].sum().backward()
        touched = (x.grad.abs().sum(dim=(0, 1)) > threshold).cpu().numpy()
    finally:
        with mg.no_grad():
            for name, p in model.named_parameters():
                p.data[...] = saved[name]
        model.train(was_training)
    rows, cols = touched.any(axis=1).nonzero()[0], touched.any(axis=0).nonzero()[0]
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
