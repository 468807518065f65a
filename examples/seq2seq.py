"""GRU encoder-decoder (d2l's seq2seq): human-written dates to ISO dates, English to Spanish verses."""

from __future__ import annotations

from examples._common import Result, Timer, arguments, finish, parameters, setup
from examples._seq import EPOCHS, METRICS, build, evaluate, load_task, train


def main(argv=None) -> Result:
    args = arguments(argv, task="both", epochs=None, batch_size=64, lr=5e-3, embed_size=32, num_hiddens=128,
                     num_layers=1, dropout=0.1, beam_width=1)  # fmt: skip
    setup(args)
    names = ["dates", "en-es"] if args.task == "both" else [args.task]
    curves, extra = {}, {}
    with Timer() as timer:
        for name in names:
            task = load_task(name, args.quick)
            model = build("plain", task, args)
            epochs = 1 if args.quick else args.epochs or EPOCHS[name]
            print(f"{name}: {len(task.train)} training pairs, {epochs} epochs, {parameters(model):,} parameters")
            curves[f"{name} train loss"] = train(model, task, epochs, args.batch_size, args.lr, f"{name}")
            extra[f"{name} {METRICS[name]}"] = evaluate(name, model, task, args.beam_width)
    first = f"{names[0]} {METRICS[names[0]]}"
    result = Result(first, extra.pop(first), curves, extra, timer.seconds)
    return finish(result, args, "GRU seq2seq")


if __name__ == "__main__":
    main()
