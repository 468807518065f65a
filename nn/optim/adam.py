"""Adam (Kingma & Ba, 2014) and AdamW (Loshchilov & Hutter, 2017): the same moments; Adam adds
weight decay to the gradient, AdamW shrinks the weights directly (decoupled weight decay)."""

from __future__ import annotations

import math

from minigrad.backend import array_module
from nn.optim.optimizer import Optimizer


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)."""

    decoupled = False

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        maximize=False,
        *,
        foreach=None,
    ):
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{type(self).__name__}: Invalid beta parameter at index {i}: {beta} (in [0, 1))")
        if eps < 0:
            raise ValueError(f"{type(self).__name__}: Invalid epsilon value: {eps}")
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                foreach=foreach,
            ),
        )

    def _update(self, param, grad, state, group):
        xp = array_module(param)
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(param), xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        if decay and self.decoupled:
            param *= 1 - lr * decay
        elif decay:
            grad = grad + decay * param
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)  # m = beta1 * m + (1 - beta1) * grad, as PyTorch's lerp
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = xp.sqrt(v) / math.sqrt(1 - beta2**step) + eps
        param -= (lr / (1 - beta1**step)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step."""

    decoupled = True

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        maximize=False,
        *,
        foreach=None,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, foreach=foreach)
