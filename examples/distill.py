"""Knowledge distillation on Fashion-MNIST: an MLP taught by a CNN's softened outputs beats the same MLP alone."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, load_fashion, setup, train_epoch


def small_cnn() -> nn.Module:
    """The teacher: two 3x3 conv + pool stages, then a linear classifier. x: (N, 1, 28, 28)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )  # fmt: skip


def distillation_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float) -> mg.Tensor:
    """Hinton et al.: alpha T^2 KL(teacher_T || student_T) + (1 - alpha) CE(student, labels).

    Softening both by T shows the teacher's "dark knowledge" (which wrong classes look alike);
    the T^2 keeps the soft term's gradient on the scale of the hard one's as T changes.
    """
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, 1), F.softmax(teacher_logits / temperature, 1), "batchmean"
    )
    return alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


@mg.no_grad()
def logits_of(model: nn.Module, images: mg.Tensor, batch_size: int = 500) -> mg.Tensor:
    model.eval()
    return mg.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def main(argv=None) -> Result:
    args = arguments(argv, epochs=40, teacher_epochs=8, transfer=1000, hidden=64, temperature=2.0, alpha=0.5,
                     batch_size=64, repeats=3)  # fmt: skip
    setup(args)
    x_train, y_train, x_test, y_test = load_fashion(args.quick)
    teacher_epochs, epochs, repeats = (1, 4, 1) if args.quick else (args.teacher_epochs, args.epochs, args.repeats)
    b = args.batch_size
    curves = {}

    with Timer() as timer:
        teacher = small_cnn()
        optimizer = nn.optim.Adam(teacher.parameters(), lr=2e-3)
        curves["teacher loss"] = []
        for epoch in range(teacher_epochs):
            curves["teacher loss"] += train_epoch(
                teacher, optimizer, len(y_train), b, lambda i: F.cross_entropy(teacher(x_train[i]), y_train[i]),
                f"teacher {epoch + 1}/{teacher_epochs}",
            )  # fmt: skip
        teacher_accuracy = accuracy(teacher, x_test, y_test)
        print(f"teacher (CNN, {len(y_train)} images) test accuracy {teacher_accuracy:.4f}", flush=True)

        # The students see only the first `transfer` images: Hinton et al.'s point is that soft targets
        # carry far more information per example than labels, so a student learns well from less data.
        n = min(args.transfer, len(y_train))
        x_transfer, y_transfer, teacher_logits = x_train[:n], y_train[:n], logits_of(teacher, x_train[:n])
        losses = {
            "alone": lambda logits, i: F.cross_entropy(logits, y_transfer[i]),
            "distilled": lambda logits, i: distillation_loss(
                logits, teacher_logits[i], y_transfer[i], args.temperature, args.alpha
            ),
        }
        finals, students = {name: [] for name in losses}, {}
        for repeat in range(repeats):
            for name, loss_of in losses.items():
                mg.manual_seed(args.seed + repeat)  # both students start from the same weights, see the same batches
                student = nn.models.mlp(hidden=(args.hidden,))
                optimizer = nn.optim.Adam(student.parameters(), lr=2e-3)
                schedule = nn.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
                history, test_curve = [], []
                for epoch in range(epochs):
                    history += train_epoch(student, optimizer, n, b, lambda i: loss_of(student(x_transfer[i]), i),
                                           f"{name} {repeat + 1}/{repeats}")  # fmt: skip
                    schedule.step()
                    test_curve.append((epoch + 1, accuracy(student, x_test, y_test)))
                curves.setdefault(f"student {name} loss", history)
                curves.setdefault(f"student {name} test accuracy", test_curve)
                finals[name].append(test_curve[-1][1])
                students[name] = student
                print(f"run {repeat + 1}, student {name:>9}: test accuracy {test_curve[-1][1]:.4f}", flush=True)

    # What the student learns from: softened outputs carry more information (higher entropy), and the
    # distilled student's predictions end closer to the teacher's (Jensen-Shannon divergence).
    test_teacher = logits_of(teacher, x_test)
    alone, distilled = (sum(finals[name]) / repeats for name in losses)
    extra = {"student alone": alone, "gain": distilled - alone, "teacher": teacher_accuracy}
    for temperature in (1.0, args.temperature):
        entropy = F.entropy(F.log_softmax(test_teacher / temperature, 1), log_input=True).mean().item()
        extra[f"teacher entropy at T={temperature:g} (nats)"] = entropy
    for name, student in students.items():
        js = F.js_div(F.log_softmax(logits_of(student, x_test), 1), F.softmax(test_teacher, 1), "batchmean")
        extra[f"JS(teacher, student {name})"] = js.item()
    result = Result(f"distilled student test accuracy (mean of {repeats})", distilled, curves, extra, timer.seconds)
    return finish(result, args, f"Knowledge distillation: CNN teacher, MLP student on {n} images")


if __name__ == "__main__":
    main()
