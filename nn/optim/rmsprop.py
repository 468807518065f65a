"""RMSprop (Hinton's lecture 6e): divide the gradient by a running root mean square."""

from __future__ import annotations

from minigrad.backend import array_module
from nn.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """s = alpha s + (1 - alpha) g^2; p -= lr * g / (sqrt(s - mean(g)^2 if centered else s) + eps)."""

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        maximize=False,
        *,
        foreach=None,
    ):
        for name, value in (("alpha", alpha), ("epsilon", eps), ("momentum", momentum)):
            if value < 0:
                raise ValueError(f"RMSprop: Invalid {name} value: {value}")
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
                maximize=maximize,
                foreach=foreach,
            ),
        )

    def _update(self, param, grad, state, group):
        xp = array_module(param)
        lr, alpha, eps, decay, momentum = (
            group["lr"],
            group["alpha"],
            group["eps"],
            group["weight_decay"],
            group["momentum"],
        )
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
            if momentum:
                state["momentum_buffer"] = xp.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1
        if decay:
            grad = grad + decay * param
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = xp.sqrt(square_avg) + eps
        if momentum:
            buffer = state["momentum_buffer"]
            buffer *= momentum
            buffer += grad / avg
            param -= lr * buffer
        else:
            param -= lr * grad / avg
