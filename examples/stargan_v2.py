"""StarGAN v2 on UCI digits (domains = digit classes): a separate classifier labels translated digits as the target."""

from __future__ import annotations

import copy
from pathlib import Path

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, on_device, progress, setup, train_classifier
from minigrad.data import load_digits, train_test_split
from nn.models import stargan_v2_small


def load(domains: list, img_size: int):
    """Digits of the chosen classes as (N, 1, img_size, img_size) in [-1, 1], labels 0..len(domains)-1."""
    images, labels = on_device(*load_digits())
    keep = mg.tensor([i for i, label in enumerate(labels.tolist()) if label in domains])
    images, labels = images[keep].unsqueeze(1) * 2 - 1, labels[keep]
    labels = mg.tensor([domains.index(label) for label in labels.tolist()])
    if img_size != images.shape[-1]:
        images = F.interpolate(images, size=img_size, mode="bilinear", align_corners=False)
    return train_test_split(images, labels, test_size=0.25, seed=0)


def digit_classifier(num_classes: int) -> nn.Module:
    """The judge: a small CNN trained on real digits only, never on the generator's output."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, num_classes),
    )


def r1_penalty(d_out: mg.Tensor, x_real: mg.Tensor) -> mg.Tensor:
    """0.5 * E ||dD(x)/dx||^2 on real images (Mescheder et al., 2018), kept differentiable (double backward)."""
    (grad,) = mg.grad(d_out.sum(), x_real, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def adversarial(logits: mg.Tensor, real: bool) -> mg.Tensor:
    """The non-saturating GAN loss: binary cross-entropy against the label "real" or "fake"."""
    return F.binary_cross_entropy_with_logits(logits, mg.full(logits.shape, float(real)))


def by_domain(labels: mg.Tensor, num_domains: int) -> list:
    """The indices of each domain's samples: a list of lists."""
    labels = labels.tolist()
    return [[i for i, label in enumerate(labels) if label == d] for d in range(num_domains)]


def sample_references(indices: list, y: mg.Tensor, images: mg.Tensor) -> mg.Tensor:
    """One random image of domain y[i] for each i (indices: by_domain's lists)."""
    picks = [indices[d][mg.randint(0, len(indices[d]), ()).item()] for d in y.tolist()]
    return images[mg.tensor(picks)]


def discriminator_loss(model, x_real, y_org, y_trg, style, lambda_r1: float):
    """Real images of their own domain are real (with the R1 penalty); translations into y_trg are fake."""
    x_real = x_real.detach().requires_grad_()
    out = model.discriminator(x_real, y_org)
    loss_real, r1 = adversarial(out, True), r1_penalty(out, x_real)
    with mg.no_grad():
        x_fake = model.generator(x_real, style)
    loss_fake = adversarial(model.discriminator(x_fake, y_trg), False)
    return loss_real + loss_fake + lambda_r1 * r1


def generator_loss(model, x_real, y_org, y_trg, style, style2, lambda_ds: float):
    """Adversarial + style reconstruction - style diversity + cycle consistency (the paper's eq. 5)."""
    x_fake = model.generator(x_real, style)
    loss_adv = adversarial(model.discriminator(x_fake, y_trg), True)
    loss_style = (model.style_encoder(x_fake, y_trg) - style).abs().mean()
    diversity = (x_fake - model.generator(x_real, style2).detach()).abs().mean()
    x_back = model.generator(x_fake, model.style_encoder(x_real, y_org))
    loss_cycle = (x_back - x_real).abs().mean()
    total = loss_adv + loss_style - lambda_ds * diversity + loss_cycle
    return total, {
        "adv": loss_adv.item(),
        "style": loss_style.item(),
        "cycle": loss_cycle.item(),
        "div": diversity.item(),
    }


@mg.no_grad()
def translate(generator, mapping_network, x, y_trg, z) -> mg.Tensor:
    return generator(x, mapping_network(z, y_trg)).clamp(-1, 1)


@mg.no_grad()
def target_accuracy(classifier, generator, model, x_test, y_test, num_domains: int, use_reference: bool):
    """The fraction of test digits translated into every other domain that the classifier labels as that domain."""
    classifier.eval()
    indices = by_domain(y_test, num_domains)
    correct = total = 0
    for shift in range(1, num_domains):
        y_trg = (y_test + shift) % num_domains
        if use_reference:
            style = model.style_encoder(sample_references(indices, y_trg, x_test), y_trg)
        else:
            style = model.mapping_network(mg.randn(len(y_test), model.latent_dim), y_trg)
        fake = generator(x_test, style).clamp(-1, 1)
        correct += int((classifier(fake).argmax(1) == y_trg).sum().item())
        total += len(y_test)
    return correct / total


def save_grid(generator, model, x_test, y_test, domains: list, path: str) -> None:
    """Rows: a test digit of each domain; columns: the source, then its translation into each domain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_domains, per_domain = len(domains), 2
    sources = mg.tensor([i for indices in by_domain(y_test, num_domains) for i in indices[:per_domain]])
    rows = len(sources)
    z = mg.randn(rows, model.latent_dim)
    fig, axes = plt.subplots(rows, num_domains + 1, figsize=(1.2 * (num_domains + 1), 1.2 * rows), squeeze=False)
    columns = [x_test[sources]] + [
        translate(generator, model.mapping_network, x_test[sources], mg.full((rows,), d, dtype=mg.int64), z)
        for d in range(num_domains)
    ]
    for c, images in enumerate(columns):
        for r in range(rows):
            axes[r][c].imshow(images[r, 0].cpu().numpy(), cmap="gray_r", vmin=-1, vmax=1)
            axes[r][c].axis("off")
        axes[0][c].set_title("source" if c == 0 else f"-> {domains[c - 1]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"translations saved to {path}")


def update_average(average: nn.Module, model: nn.Module, beta: float) -> None:
    """average <- beta * average + (1 - beta) * model, parameter by parameter (the paper's G_ema)."""
    with mg.no_grad():
        for a, p in zip(average.parameters(), model.parameters()):
            a.mul_(beta).add_(p * (1 - beta))


def main(argv=None) -> Result:
    args = arguments(
        argv,
        steps=500,
        batch_size=16,
        lr=1e-3,
        domains="0,1,2,3,4",
        img_size=8,
        dim=16,
        lambda_r1=1.0,
        lambda_ds=1.0,
        classifier_epochs=15,
    )
    setup(args)
    steps, classifier_epochs = (16, 1) if args.quick else (args.steps, args.classifier_epochs)
    batch_size, evaluate_every = (8, 16) if args.quick else (args.batch_size, max(steps // 10, 1))
    domains = [int(d) for d in args.domains.split(",")]
    num_domains = len(domains)
    x_train, x_test, y_train, y_test = load(domains, args.img_size)
    if args.quick:
        x_test, y_test = x_test[:100], y_test[:100]
    train_indices = by_domain(y_train, num_domains)

    # 1. The judge, trained first on the real digits of the chosen classes.
    classifier = digit_classifier(num_classes=num_domains)
    classifier_losses = train_classifier(classifier, x_train, y_train, classifier_epochs)
    classifier_accuracy = accuracy(classifier, x_test, y_test)
    print(f"classifier test accuracy on real digits: {classifier_accuracy:.4f}", flush=True)

    # 2. StarGAN v2, with Adam(betas=(0, 0.99)) and a 100x smaller learning rate for the mapping network.
    model = stargan_v2_small(num_domains, img_size=args.img_size, dim=args.dim)
    generator_average = copy.deepcopy(model.generator)
    adam = dict(betas=(0.0, 0.99), weight_decay=1e-4)
    optimize_d = nn.optim.Adam(model.discriminator.parameters(), lr=args.lr, **adam)
    optimize_g = nn.optim.Adam(
        [
            {"params": model.generator.parameters()},
            {"params": model.style_encoder.parameters()},
            {"params": model.mapping_network.parameters(), "lr": args.lr / 100},
        ],
        lr=args.lr,
        **adam,
    )

    # The adversarial terms are a game, not minimised quantities; the reconstruction losses should fall.
    curves = {"classifier: loss": classifier_losses, "adversarial: discriminator": [], "adversarial: generator": []}
    curves |= {"loss: style reconstruction": [], "loss: cycle": [], "diversity (L1)": []}
    curves["accuracy: translations labelled as the target"] = []
    with Timer() as timer:
        bar = progress(range(steps), "StarGAN v2")
        for step in bar:
            index = mg.randint(0, len(y_train), (batch_size,))
            x_real, y_org = x_train[index], y_train[index]
            y_trg = mg.randint(0, num_domains, (batch_size,))
            # Every other step the target style comes from a reference image instead of a latent code.
            if step % 2:
                refs = [sample_references(train_indices, y_trg, x_train) for _ in range(2)]
                style, style2 = (model.style_encoder(x_ref, y_trg) for x_ref in refs)
            else:
                latents = mg.randn(2, batch_size, model.latent_dim)
                style, style2 = (model.mapping_network(z, y_trg) for z in latents)

            d_loss = discriminator_loss(model, x_real, y_org, y_trg, style.detach(), args.lambda_r1)
            optimize_d.zero_grad()
            d_loss.backward()
            optimize_d.step()

            lambda_ds = args.lambda_ds * (1 - step / steps)  # diversity matters early, then fades
            g_loss, parts = generator_loss(model, x_real, y_org, y_trg, style, style2, lambda_ds)
            optimize_g.zero_grad()
            g_loss.backward()
            optimize_g.step()
            update_average(generator_average, model.generator, beta=0.99)  # the paper: 0.999 over 100k steps

            curves["adversarial: discriminator"].append(d_loss.item())
            curves["adversarial: generator"].append(parts["adv"])
            curves["loss: style reconstruction"].append(parts["style"])
            curves["loss: cycle"].append(parts["cycle"])
            curves["diversity (L1)"].append(parts["div"])
            bar.set_postfix(d=f"{d_loss.item():.2f}", g=f"{parts['adv']:.2f}", cyc=f"{parts['cycle']:.2f}")
            if (step + 1) % evaluate_every == 0:
                judged = target_accuracy(classifier, generator_average, model, x_test, y_test, num_domains, False)
                curves["accuracy: translations labelled as the target"].append((step + 1, judged))
                print(f"step {step + 1}: {judged:.3f} of translations labelled as the target", flush=True)

    # 3. The judge's verdict on test digits translated into every other domain.
    latent = target_accuracy(classifier, generator_average, model, x_test, y_test, num_domains, use_reference=False)
    reference = target_accuracy(classifier, generator_average, model, x_test, y_test, num_domains, use_reference=True)
    extra = {"reference-guided": reference, "classifier accuracy on real digits": classifier_accuracy}
    result = Result("translations labelled as the target domain", latent, curves, extra, timer.seconds)
    finish(result, args, f"StarGAN v2 on digits {domains}")
    if args.plot:
        path = Path(args.plot)
        save_grid(generator_average, model, x_test, y_test, domains, str(path.with_stem(path.stem + "_translations")))
    return result


if __name__ == "__main__":
    main()
