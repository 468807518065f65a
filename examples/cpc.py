"""Contrastive predictive coding (van den Oord et al., 2018) on generated 1-D signals with a latent register.

Each signal plays a run of notes, sines of random pitch, all drawn from one of 8 frequency bands
(its register), with random phase, loudness and noise. CPC sees no labels:

- a strided 1-D conv encoder maps the raw signal ``(B, 1, L)`` to one vector z_t per 16 samples;
- a GRU summarises z_1..z_t into a context c_t;
- for each k = 1..K a linear map W_k predicts z_{t+k} from c_t, trained with InfoNCE: W_k c_t
  must pick its own signal's z_{t+k} out of those of the batch's B signals at time t + k.

A note lasts two steps, so beyond k = 1 or 2 the future shares little with the present but the
register, the slow latent the context learns to keep. ``log N - InfoNCE`` (N = B candidates) is
a lower bound on the mutual information I(z_{t+k}; c_t), printed per step k (on held-out
signals). A linear probe on the last context vector c_T then reads out the register, next to
the same probe on the untrained network.
"""

from __future__ import annotations

import copy
import math

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, batches, finish, progress, setup
from nn.utils import extract_features, linear_probe

REGISTERS = 8  # the latent class: a frequency band, one of 8 log-spaced from 0.02 to 0.2 cycles per sample


def register_signals(n: int, length: int, note_length: int, noise: float) -> tuple[mg.Tensor, mg.Tensor]:
    """``n`` signals ``(n, 1, length)`` and their registers ``(n,)``: notes of ``note_length``
    samples, each a sine whose frequency is drawn log-uniformly from the signal's band
    ``0.02 * 10 ** ((register + [0, 1)) / 8)``; a random start phase (the phase runs on across
    notes), loudness 0.5 to 1.5 per signal, Gaussian noise of standard deviation ``noise``."""
    registers = mg.randint(0, REGISTERS, (n,))
    notes = length // note_length
    frequency = 0.02 * 10 ** ((registers.unsqueeze(1) + mg.rand(n, notes)) / REGISTERS)  # cycles per sample
    per_sample = frequency.unsqueeze(2).expand(n, notes, note_length).reshape(n, notes * note_length)
    phase = 2 * math.pi * (per_sample.cumsum(1) + mg.rand(n, 1))  # (n, L)
    loudness = 0.5 + mg.rand(n, 1)
    x = loudness * phase.sin() + noise * mg.randn(n, notes * note_length)
    return x.unsqueeze(1), registers


class CPC(nn.Module):
    """Encoder (three strided 1-D convs, 16x down) -> GRU context -> K linear predictors.

    ``encode(x)`` gives z: (B, T, C) and c: (B, T, H) for x: (B, 1, 16 T); ``forward(x)`` the last
    context vector c_T: (B, H), the summary a probe reads."""

    def __init__(self, channels: int, hidden: int, steps: int):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv1d(1, channels, 8, stride=4, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 4, stride=2, padding=1),
        )  # fmt: skip
        self.context = nn.GRU(channels, hidden, batch_first=True)
        self.predictors = nn.ModuleList([nn.Linear(hidden, channels) for _ in range(steps)])

    def encode(self, x: mg.Tensor) -> tuple[mg.Tensor, mg.Tensor]:
        z = self.encoder(x).transpose(1, 2)  # (B, T, C)
        c, _ = self.context(z)  # (B, T, H)
        return z, c

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.encode(x)[1][:, -1]


def info_nce_per_step(model: CPC, x: mg.Tensor, temperature: float) -> list[mg.Tensor]:
    """For each k = 1..K: the InfoNCE of predicting z_{t+k} of each signal of the batch
    ``x: (B, 1, L)`` from its c_t, against the z_{t+k} of the B - 1 other signals (N = B
    candidates), averaged over every t < T - k."""
    z, c = model.encode(x)
    t = z.shape[1]
    losses = []
    for k, predictor in enumerate(model.predictors, start=1):
        prediction = predictor(c[:, : t - k])  # W_k c_t: (B, T - k, C)
        per_time = [F.info_nce(prediction[:, s], z[:, s + k], temperature=temperature) for s in range(t - k)]
        losses.append(sum(per_time) / len(per_time))
    return losses


def main(argv=None) -> Result:
    args = arguments(argv, epochs=3, batch_size=64, lr=2e-3, train_size=4000, test_size=1000, length=512,
                     note_length=32, noise=0.5, channels=64, hidden=64, steps=4, temperature=0.1)  # fmt: skip
    setup(args)
    quick = args.quick
    epochs, train_size, test_size = (2, 512, 200) if quick else (args.epochs, args.train_size, args.test_size)
    batch_size = 32 if quick else args.batch_size
    x_train, y_train = register_signals(train_size, args.length, args.note_length, args.noise)
    x_test, y_test = register_signals(test_size, args.length, args.note_length, args.noise)

    model = CPC(args.channels, args.hidden, args.steps)
    untrained = copy.deepcopy(model)
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    curves = {"train loss": []} | {f"I bound (nats): k={k}": [] for k in range(1, args.steps + 1)}

    def probe(net: nn.Module) -> float:
        return linear_probe(None, extract_features(net, (x_train, y_train)), extract_features(net, (x_test, y_test)))

    with Timer() as timer:
        random_probe = probe(untrained)
        print(f"random network: linear probe on c_T {random_probe:.4f}", flush=True)
        for epoch in range(epochs):
            bar = progress(batches(train_size, batch_size, drop_last=True), f"epoch {epoch + 1}/{epochs}",
                           total=train_size // batch_size)  # fmt: skip
            for index in bar:
                per_step = info_nce_per_step(model, x_train[index], args.temperature)
                loss = sum(per_step) / len(per_step)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                curves["train loss"].append(loss.item())
                for k, step_loss in enumerate(per_step, start=1):
                    curves[f"I bound (nats): k={k}"].append(math.log(batch_size) - step_loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}")
        model.eval()
        with mg.no_grad():  # the bound on held-out signals, averaged over batches
            test_losses = [info_nce_per_step(model, x_test[index], args.temperature)
                           for index in batches(test_size, batch_size, shuffle=False, drop_last=True)]  # fmt: skip
        bounds = [math.log(batch_size) - sum(step.item() for step in losses) / len(test_losses)
                  for losses in zip(*test_losses)]  # fmt: skip
        trained_probe = probe(model)

    extra = {"random network linear probe": random_probe}
    extra |= {f"I(z_t+{k}; c_t) >= (nats)": bound for k, bound in enumerate(bounds, start=1)}
    extra["log N"] = math.log(batch_size)
    result = Result("linear probe accuracy (register)", trained_probe, curves, extra, timer.seconds)
    return finish(result, args, "CPC on generated signals: InfoNCE bound per prediction step")


if __name__ == "__main__":
    main()
