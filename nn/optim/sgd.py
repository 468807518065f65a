"""SGD with momentum, dampening, Nesterov momentum and weight decay (PyTorch's update, step for step)."""

from __future__ import annotations

from minigrad.backend import array_module
from nn.optim.optimizer import Optimizer


class SGD(Optimizer):
    """g = grad + weight_decay * p; b = momentum * b + (1 - dampening) * g (b = g at the first step);
    p -= lr * (g + momentum * b if nesterov else b)."""

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=False,
        *,
        foreach=None,
    ):
        if momentum < 0:
            raise ValueError(f"SGD: Invalid momentum value: {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
                foreach=foreach,
            ),
        )

    def _update(self, param, grad, state, group):
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        if decay:
            grad = grad + decay * param
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = array_module(grad).array(grad, dtype=param.dtype, copy=True)
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad if group["dampening"] else grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        param -= lr * grad
