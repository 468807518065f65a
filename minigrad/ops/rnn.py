"""Fused pointwise parts of the recurrent cells: everything in one LSTM or GRU step after its GEMMs.

A step of an LSTM is two GEMMs (input and hidden projections) and a dozen elementwise ops on the
gates. Done as separate ops, each of those records a node and allocates its arrays, which is
most of the time of a small recurrent step; here they are one op each way. The gate layouts are
PyTorch's (LSTM: input, forget, cell, output; GRU: reset, update, new), so its weights load one
to one. ``lstm_cell_reference`` and ``gru_cell_reference`` are the primitive compositions they
replace: the tests compare against them and double backward goes through them.
"""

from __future__ import annotations

from minigrad.autograd import Function, backward_through, is_grad_enabled
from minigrad.backend import array_module
from minigrad.ops.shape import stack
from minigrad.tensor import Tensor


def _sigmoid(xp, x, out=None):
    """0.5 + 0.5 tanh(x / 2): no overflow for large |x|."""
    out = xp.multiply(x, 0.5, out=out)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def lstm_cell_reference(gates: Tensor, c: Tensor) -> tuple:
    i, f, g, o = gates.chunk(4, dim=-1)
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_next.tanh(), c_next


def lstm_sequence_reference(x_proj: Tensor, h0: Tensor, c0: Tensor, weight_hh: Tensor, reverse: bool = False):
    """The LSTM layer step by step: x_proj (T, N, 4H) already holds x W_ih^T and both biases."""
    h, c, outputs = h0, c0, []
    steps = range(x_proj.shape[0] - 1, -1, -1) if reverse else range(x_proj.shape[0])
    for t in steps:
        h, c = lstm_cell_reference(x_proj[t] + h @ weight_hh.mT, c)
        outputs.append(h)
    return stack(outputs[::-1] if reverse else outputs), h, c


def gru_cell_reference(gates_x: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
    xr, xz, xn = gates_x.chunk(3, dim=-1)
    hr, hz, hn = gates_h.chunk(3, dim=-1)
    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return (1 - z) * n + z * h


class LSTMCellPointwise(Function):
    """gates: (N, 4H) pre-activations, c: (N, H) -> (h_next, c_next), each (N, H)."""

    def forward(self, gates, c):
        xp = array_module(gates)
        hidden = c.shape[-1]
        if gates.shape[-1] != 4 * hidden or gates.shape[:-1] != c.shape[:-1]:
            raise RuntimeError(
                f"lstm_cell: expected gates of shape (*, {4 * hidden}) for c of shape "
                f"{tuple(c.shape)}, got {tuple(gates.shape)}"
            )
        act = _sigmoid(xp, gates)
        act[..., 2 * hidden : 3 * hidden] = xp.tanh(gates[..., 2 * hidden : 3 * hidden])
        i, f, g, o = (act[..., k * hidden : (k + 1) * hidden] for k in range(4))
        c_next = f * c
        c_next += i * g
        tanh_c = xp.tanh(c_next)
        self.save_for_backward(gates, c)
        self.act, self.c, self.tanh_c = act, c, tanh_c
        return o * tanh_c, c_next

    def backward(self, grad_h, grad_c):
        if is_grad_enabled():
            return backward_through(lstm_cell_reference, self.saved_tensors, (grad_h, grad_c), self.needs_input_grad)
        act, tanh_c, hidden = self.act, self.tanh_c, self.c.shape[-1]
        xp = array_module(act)
        i, f, g, o = (act[..., k * hidden : (k + 1) * hidden] for k in range(4))
        grad_gates = xp.empty_like(act)
        gi, gf, gg, go = (grad_gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
        dc = xp.zeros_like(tanh_c) if grad_c is None else grad_c.data.copy()
        if grad_h is not None:
            dh = grad_h.data
            xp.multiply(dh, tanh_c, out=go)
            dc += dh * o * (1 - tanh_c * tanh_c)
        else:
            go[...] = 0
        go *= o * (1 - o)
        xp.multiply(dc, g * i * (1 - i), out=gi)
        xp.multiply(dc, self.c * f * (1 - f), out=gf)
        xp.multiply(dc, i * (1 - g * g), out=gg)
        need_gates, need_c = self.needs_input_grad
        return (Tensor._make(grad_gates) if need_gates else None), (Tensor._make(dc * f) if need_c else None)


class LSTMSequence(Function):
    """A whole LSTM layer (one direction) in one op: x_proj (T, N, 4H) = x W_ih^T + b_ih + b_hh,
    h0, c0 (N, H), weight_hh (4H, H) -> outputs (T, N, H), h_T, c_T.

    The time loop runs on arrays: one GEMM and a few elementwise passes per step each way, no
    node per step. Backward collects every step's gate gradients and forms the gradient of
    weight_hh with one large GEMM instead of one small GEMM per step.
    """

    def forward(self, x_proj, h0, c0, weight_hh, reverse=False):
        xp = array_module(x_proj)
        steps, n, gates = x_proj.shape
        hidden = gates // 4
        if gates != 4 * hidden or h0.shape != c0.shape or h0.shape != (n, hidden) or weight_hh.shape != (gates, hidden):
            raise RuntimeError(
                f"lstm_sequence: expected x_proj (T, N, 4H), h0 and c0 (N, H), weight_hh (4H, H), got "
                f"{tuple(x_proj.shape)}, {tuple(h0.shape)}, {tuple(c0.shape)}, {tuple(weight_hh.shape)}"
            )
        self.order = list(range(steps - 1, -1, -1)) if reverse else list(range(steps))
        self.reverse = reverse
        acts = xp.empty_like(x_proj)
        cells = xp.empty((steps, n, hidden), dtype=x_proj.dtype)
        tanh_cells = xp.empty_like(cells)
        out = xp.empty_like(cells)
        # W_hh^T copied once, contiguous: the step's GEMM runs faster on it than on the transposed
        # view (0.11 against 0.14 ms at N 32, H 256), and it runs T times
        h, c, w_t = h0, c0, xp.ascontiguousarray(weight_hh.T)
        # in place into preallocated arrays: each step's arrays are small, and a fresh one costs
        # about as much as the arithmetic on it
        pre, ig = xp.empty((n, gates), dtype=x_proj.dtype), xp.empty((n, hidden), dtype=x_proj.dtype)
        g_gate = slice(2 * hidden, 3 * hidden)
        for t in self.order:
            xp.matmul(h, w_t, out=pre)
            pre += x_proj[t]
            act = acts[t]
            _sigmoid(xp, pre, out=act)  # all four gates at once; g's is overwritten next
            xp.tanh(pre[:, g_gate], out=act[:, g_gate])
            i, f, g, o = (act[:, k * hidden : (k + 1) * hidden] for k in range(4))
            xp.multiply(f, c, out=cells[t])
            xp.multiply(i, g, out=ig)
            cells[t] += ig
            xp.tanh(cells[t], out=tanh_cells[t])
            xp.multiply(o, tanh_cells[t], out=out[t])
            h, c = out[t], cells[t]
        self.save_for_backward(x_proj, h0, c0, weight_hh)
        self.acts, self.cells, self.tanh_cells, self.out, self.h0, self.c0, self.weight_hh = (
            acts,
            cells,
            tanh_cells,
            out,
            h0,
            c0,
            weight_hh,
        )
        return out, out[self.order[-1]].copy(), cells[self.order[-1]].copy()

    def backward(self, grad_out, grad_h, grad_c):
        if is_grad_enabled():
            return backward_through(
                lambda *inputs: lstm_sequence_reference(*inputs, reverse=self.reverse),
                self.saved_tensors,
                (grad_out, grad_h, grad_c),
                self.needs_input_grad,
            )
        xp = array_module(self.acts)
        hidden = self.cells.shape[-1]
        dh = xp.zeros_like(self.h0) if grad_h is None else grad_h.data.copy()
        dc = xp.zeros_like(self.c0) if grad_c is None else grad_c.data.copy()
        d_gates = xp.empty_like(self.acts)
        first = self.order[0]
        for k in range(len(self.order) - 1, -1, -1):
            t = self.order[k]
            c_prev = self.c0 if t == first else self.cells[self.order[k - 1]]
            if grad_out is not None:
                dh += grad_out.data[t]
            i, f, g, o = (self.acts[t][:, j * hidden : (j + 1) * hidden] for j in range(4))
            tanh_c = self.tanh_cells[t]
            dc += dh * o * (1 - tanh_c * tanh_c)
            d = d_gates[t]
            xp.multiply(dc, g * i * (1 - i), out=d[:, :hidden])
            xp.multiply(dc, c_prev * f * (1 - f), out=d[:, hidden : 2 * hidden])
            xp.multiply(dc, i * (1 - g * g), out=d[:, 2 * hidden : 3 * hidden])
            xp.multiply(dh * tanh_c, o * (1 - o), out=d[:, 3 * hidden :])
            dc *= f
            xp.matmul(d, self.weight_hh, out=dh)
        need_x, need_h0, need_c0, need_w = self.needs_input_grad
        grad_w = None
        if need_w:  # sum over steps of d_gates[t]^T h_prev[t]: one GEMM over all steps
            h_prev = xp.empty_like(self.out)
            for k, t in enumerate(self.order):
                h_prev[t] = self.h0 if k == 0 else self.out[self.order[k - 1]]
            grad_w = Tensor._make(d_gates.reshape(-1, 4 * hidden).T @ h_prev.reshape(-1, hidden))
        return (
            Tensor._make(d_gates) if need_x else None,
            Tensor._make(dh) if need_h0 else None,
            Tensor._make(dc) if need_c0 else None,
            grad_w,
        )


class GRUCellPointwise(Function):
    """gates_x = x W_ih^T + b_ih, gates_h = h W_hh^T + b_hh: (N, 3H); h: (N, H) -> h_next (N, H)."""

    def forward(self, gates_x, gates_h, h):
        xp = array_module(h)
        hidden = h.shape[-1]
        if gates_x.shape != gates_h.shape or gates_x.shape[-1] != 3 * hidden:
            raise RuntimeError(
                f"gru_cell: expected gates of shape (*, {3 * hidden}) for h of shape {tuple(h.shape)}, "
                f"got {tuple(gates_x.shape)} and {tuple(gates_h.shape)}"
            )
        rz = _sigmoid(xp, gates_x[..., : 2 * hidden] + gates_h[..., : 2 * hidden])
        r, z = rz[..., :hidden], rz[..., hidden:]
        hn = gates_h[..., 2 * hidden :]
        n = xp.tanh(gates_x[..., 2 * hidden :] + r * hn)
        self.save_for_backward(gates_x, gates_h, h)
        self.rz, self.n, self.hn, self.h = rz, n, hn, h
        return n + z * (h - n)

    def backward(self, grad):
        if is_grad_enabled():
            return backward_through(gru_cell_reference, self.saved_tensors, (grad,), self.needs_input_grad)
        hidden = self.h.shape[-1]
        xp = array_module(self.n)
        dh, n, rz = grad.data, self.n, self.rz
        r, z = rz[..., :hidden], rz[..., hidden:]
        grad_x = xp.empty(n.shape[:-1] + (3 * hidden,), dtype=n.dtype)
        dn = grad_x[..., 2 * hidden :]
        xp.multiply(dh * (1 - z), 1 - n * n, out=dn)
        xp.multiply(dn * self.hn, r * (1 - r), out=grad_x[..., :hidden])
        xp.multiply(dh * (self.h - n), z * (1 - z), out=grad_x[..., hidden : 2 * hidden])
        need_x, need_h_gates, need_h = self.needs_input_grad
        grad_h_gates = None
        if need_h_gates:
            grad_h_gates = grad_x.copy()
            grad_h_gates[..., 2 * hidden :] *= r
        return (
            Tensor._make(grad_x) if need_x else None,
            Tensor._make(grad_h_gates) if need_h_gates else None,
            Tensor._make(dh * z) if need_h else None,
        )


def gru_sequence_reference(x_proj: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor, reverse: bool = False):
    """The GRU layer step by step: x_proj (T, N, 3H) already holds x W_ih^T + b_ih."""
    h, outputs = h0, []
    steps = range(x_proj.shape[0] - 1, -1, -1) if reverse else range(x_proj.shape[0])
    for t in steps:
        h = gru_cell_reference(x_proj[t], h @ weight_hh.mT + bias_hh, h)
        outputs.append(h)
    return stack(outputs[::-1] if reverse else outputs), h


class GRUSequence(Function):
    """A whole GRU layer (one direction) in one op: x_proj (T, N, 3H) = x W_ih^T + b_ih, h0 (N, H),
    weight_hh (3H, H), bias_hh (3H,) -> outputs (T, N, H), h_T.

    As LSTMSequence: the time loop runs on arrays, and backward forms the gradients of weight_hh
    and bias_hh once over all steps (one GEMM) instead of once per step.
    """

    def forward(self, x_proj, h0, weight_hh, bias_hh, reverse=False):
        xp = array_module(x_proj)
        steps, n, gates = x_proj.shape
        hidden = gates // 3
        if (
            gates != 3 * hidden
            or h0.shape != (n, hidden)
            or weight_hh.shape != (gates, hidden)
            or bias_hh.shape != (gates,)
        ):
            raise RuntimeError(
                f"gru_sequence: expected x_proj (T, N, 3H), h0 (N, H), weight_hh (3H, H), bias_hh (3H,), got "
                f"{tuple(x_proj.shape)}, {tuple(h0.shape)}, {tuple(weight_hh.shape)}, {tuple(bias_hh.shape)}"
            )
        self.order = list(range(steps - 1, -1, -1)) if reverse else list(range(steps))
        self.reverse = reverse
        rz = xp.empty((steps, n, 2 * hidden), dtype=x_proj.dtype)
        new = xp.empty((steps, n, hidden), dtype=x_proj.dtype)
        hn = xp.empty_like(new)  # h W_hn^T + b_hn, which the reset gate scales
        out = xp.empty_like(new)
        gh = xp.empty((n, gates), dtype=x_proj.dtype)
        h, w_t = h0, xp.ascontiguousarray(weight_hh.T)  # contiguous, as in LSTMSequence
        for t in self.order:
            xp.matmul(h, w_t, out=gh)
            gh += bias_hh
            xp.add(x_proj[t, :, : 2 * hidden], gh[:, : 2 * hidden], out=rz[t])
            _sigmoid(xp, rz[t], out=rz[t])
            r, z = rz[t, :, :hidden], rz[t, :, hidden:]
            hn[t] = gh[:, 2 * hidden :]
            xp.multiply(r, hn[t], out=new[t])
            new[t] += x_proj[t, :, 2 * hidden :]
            xp.tanh(new[t], out=new[t])
            xp.subtract(h, new[t], out=out[t])  # h_next = n + z (h - n)
            out[t] *= z
            out[t] += new[t]
            h = out[t]
        self.save_for_backward(x_proj, h0, weight_hh, bias_hh)
        self.rz, self.new, self.hn, self.out, self.h0, self.weight_hh = rz, new, hn, out, h0, weight_hh
        return out, out[self.order[-1]].copy()

    def backward(self, grad_out, grad_h):
        if is_grad_enabled():
            return backward_through(
                lambda *inputs: gru_sequence_reference(*inputs, reverse=self.reverse),
                self.saved_tensors,
                (grad_out, grad_h),
                self.needs_input_grad,
            )
        xp = array_module(self.out)
        hidden = self.out.shape[-1]
        dh = xp.zeros_like(self.h0) if grad_h is None else grad_h.data.copy()
        d_x = xp.empty(self.out.shape[:2] + (3 * hidden,), dtype=self.out.dtype)
        d_h_gates = xp.empty_like(d_x)
        for k in range(len(self.order) - 1, -1, -1):
            t = self.order[k]
            h_prev = self.h0 if k == 0 else self.out[self.order[k - 1]]
            if grad_out is not None:
                dh += grad_out.data[t]
            r, z, n = self.rz[t, :, :hidden], self.rz[t, :, hidden:], self.new[t]
            d = d_x[t]
            dn = d[:, 2 * hidden :]
            xp.multiply(dh * (1 - z), 1 - n * n, out=dn)
            xp.multiply(dn * self.hn[t], r * (1 - r), out=d[:, :hidden])
            xp.multiply(dh * (h_prev - n), z * (1 - z), out=d[:, hidden : 2 * hidden])
            dg = d_h_gates[t]
            dg[:, : 2 * hidden] = d[:, : 2 * hidden]
            xp.multiply(dn, r, out=dg[:, 2 * hidden :])
            dh *= z
            dh += dg @ self.weight_hh
        need_x, need_h0, need_w, need_b = self.needs_input_grad
        grad_w = grad_b = None
        flat = d_h_gates.reshape(-1, 3 * hidden)
        if need_w:  # sum over steps of d_gates_h[t]^T h_prev[t]: one GEMM over all steps
            h_prev = xp.empty_like(self.out)
            for k, t in enumerate(self.order):
                h_prev[t] = self.h0 if k == 0 else self.out[self.order[k - 1]]
            grad_w = Tensor._make(flat.T @ h_prev.reshape(-1, hidden))
        if need_b:
            grad_b = Tensor._make(flat.sum(axis=0))
        return (
            Tensor._make(d_x) if need_x else None,
            Tensor._make(dh) if need_h0 else None,
            grad_w,
            grad_b,
        )


def lstm_cell_pointwise(gates: Tensor, c: Tensor) -> tuple:
    """The LSTM step after its GEMMs: gates (N, 4H) [i, f, g, o], c (N, H) -> (h_next, c_next)."""
    return LSTMCellPointwise.apply(gates, c)


def lstm_sequence(x_proj: Tensor, h0: Tensor, c0: Tensor, weight_hh: Tensor, reverse: bool = False) -> tuple:
    """One direction of an LSTM layer: x_proj (T, N, 4H) (input projection plus both biases),
    h0, c0 (N, H), weight_hh (4H, H) -> (outputs (T, N, H), h_T, c_T)."""
    return LSTMSequence.apply(x_proj, h0, c0, weight_hh, reverse=reverse)


def gru_sequence(x_proj: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor, reverse: bool = False) -> tuple:
    """One direction of a GRU layer: x_proj (T, N, 3H) (input projection plus b_ih), h0 (N, H),
    weight_hh (3H, H), bias_hh (3H,) -> (outputs (T, N, H), h_T)."""
    return GRUSequence.apply(x_proj, h0, weight_hh, bias_hh, reverse=reverse)


def gru_cell_pointwise(gates_x: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
    """The GRU step after its GEMMs: gates_x, gates_h (N, 3H) [r, z, n], h (N, H) -> h_next."""
    return GRUCellPointwise.apply(gates_x, gates_h, h)
