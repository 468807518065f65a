"""GRU encoder-decoder (d2l's seq2seq): human-written dates to ISO dates, English to Spanish verses."""

from __future__ import annotations

from examples._common import Result, arguments, parameters, setup
from examples._seq import EPOCHS, build, run_tasks, train


def main(argv=None) -> Result:
    args = arguments(argv, task="both", epochs=None, batch_size=64, lr=5e-3, embed_size=32, num_hiddens=128,
                     num_layers=1, dropout=0.1, beam_width=1)  # fmt: skip
    setup(args)

    def fit(name, task):
        model = build("plain", task, args)
        epochs = 1 if args.quick else args.epochs or EPOCHS[name]
        print(f"{name}: {len(task.train)} training pairs, {epochs} epochs, {parameters(model):,} parameters")
        return model, train(model, task, epochs, args.batch_size, args.lr, name)

    return run_tasks(args, "GRU seq2seq", fit)


if __name__ == "__main__":
    main()
