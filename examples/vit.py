"""Vision Transformer (patch embedding, class token, position embedding, pre-LN encoder) on Fashion-MNIST."""

from __future__ import annotations

from examples._common import Result, arguments, finish, parameters, setup
from examples._vision import fashion, fit, optimizer
from nn.models import vit


def main(argv=None) -> Result:
    args = arguments(argv, epochs=40, batch_size=64, lr=2e-3, weight_decay=0.05, patch=4, dim=64, depth=4, heads=4)
    setup(args)
    quick = args.quick
    epochs, dim, depth, batch_size = (1, 32, 2, 32) if quick else (args.epochs, args.dim, args.depth, args.batch_size)
    data = fashion(quick)

    # vit(patch, dim, depth, heads): ViT-B/16 is vit(16, 768, 12, 12); here 4x4 patches give 49 tokens + CLS.
    model = vit(args.patch, dim, depth, args.heads, image_size=28, mlp_dim=2 * dim, num_classes=10, in_channels=1)
    tokens = model.patch_embedding.num_patches + 1
    print(f"vit(patch={args.patch}, dim={dim}, depth={depth}, heads={args.heads}): {tokens} tokens, ", end="")
    print(f"{parameters(model):,} parameters")
    optim = optimizer(model, "adamw", args.lr, weight_decay=args.weight_decay)
    curves, seconds = fit(model, data, optim, args.lr, epochs, batch_size)
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, {"tokens": tokens}, seconds)
    return finish(result, args, "ViT on Fashion-MNIST")


if __name__ == "__main__":
    main()
