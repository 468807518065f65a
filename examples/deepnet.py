"""DeepNet: an 18-layer Transformer on dates, Post-LN against DeepNorm with the same recipe (no warm-up, lr 2e-3)."""

from __future__ import annotations

import math

import minigrad as mg
from examples._common import Result, Timer, arguments, finish, parameters, setup
from examples._seq import load_task, score, translate
from examples.transformer import train
from nn.models import TransformerSeq2Seq


class UpdateNorm:
    """||dF||, the model update of DeepNet's figure: after each step, the norm of the change of the model's
    logits (eval mode) on one fixed batch since the step before."""

    def __init__(self, model, probe):
        self.probe, self.norms = probe, []
        self.before = self.outputs(model)

    @mg.no_grad()
    def outputs(self, model):
        model.eval()
        return model(*self.probe)  # (B, T, V)

    def __call__(self, model) -> dict:
        after = self.outputs(model)
        self.norms.append(((after - self.before) ** 2).sum().sqrt().item())
        self.before = after
        return {"dF": f"{self.norms[-1]:.3g}"}


def main(argv=None) -> Result:
    args = arguments(argv, steps=300, batch_size=64, lr=2e-3, d_model=32, nhead=4, layers=9, dim_feedforward=64)
    setup(args)
    task = load_task("dates", args.quick)
    steps, layers = (20, 2) if args.quick else (args.steps, args.layers)
    probe = next(task.batches("train", 32, shuffle=False))
    curves, extra = {}, {}
    with Timer() as timer:
        for name, deepnorm in (("Post-LN", False), ("DeepNorm", True)):
            mg.manual_seed(args.seed)  # the same seed and data order for both
            model = TransformerSeq2Seq(
                len(task.src_vocab), len(task.tgt_vocab), args.d_model, args.nhead, layers, layers,
                args.dim_feedforward, dropout=0.0, max_len=64, deepnorm=deepnorm,
            )  # fmt: skip
            print(f"{name}: {layers}+{layers} layers, d_model {args.d_model}, {parameters(model):,} parameters")
            update = UpdateNorm(model, (probe.src, probe.src_lengths, probe.tgt_in))
            losses = train(model, task, steps, args.batch_size, args.lr, 0, name, after_step=update)
            curves[f"loss: {name}"], curves[f"||dF||: {name}"] = losses, update.norms
            trained = math.isfinite(losses[-1])
            extra[f"{name} final loss"] = sum(losses[-20:]) / len(losses[-20:])
            extra[f"{name} exact match"] = score("dates", translate(model, task), task) if trained else 0.0
    first = "DeepNorm exact match"
    result = Result(first, extra.pop(first), curves, extra, timer.seconds)
    return finish(result, args, f"{2 * layers}-layer Transformer on dates, lr {args.lr}, no warm-up")


if __name__ == "__main__":
    main()
