"""ViLBERT-style two-stream co-attention vs. a single-stream Transformer: matching two-digit images to captions.

As in the paper, the image arrives as region features from a detector trained beforehand and then frozen
(here a small CNN trained to classify the training split's digits); both models get the same features."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, fit, on_device, parameters, progress, setup
from minigrad.data import load_digits, train_test_split

DIGITS = "zero one two three four five six seven eight nine".split()
WORDS = ["[CLS]", "a", "left", "right", "of"] + DIGITS
CAPTION_LENGTH = 7  # [CLS] a <digit> left|right of a <digit>: every caption is this long, so nothing is padded


def caption(left: int, right: int, template: int) -> list[int]:
    """Word ids of "a seven left of a two" (template 0) or of the same scene as "a two right of a seven"."""
    first, relation, second = (left, "left", right) if template == 0 else (right, "right", left)
    words = ["[CLS]", "a", DIGITS[first], relation, "of", "a", DIGITS[second]]
    return [WORDS.index(w) for w in words]


def pairs(features: mg.Tensor, labels: mg.Tensor, n: int) -> tuple:
    """n scenes of two digits side by side, as the detector's region features (n, 2, F), captions (n, 7) and
    whether each caption matches (n,).

    Half the captions match; the others are hard negatives: the two digits swapped (a third of them, when
    the digits differ) or one digit changed to another."""
    left, right = mg.randint(0, len(labels), (n,)), mg.randint(0, len(labels), (n,))
    regions = mg.stack([features[left], features[right]], dim=1)
    truth_left, truth_right = labels[left].tolist(), labels[right].tolist()
    kinds, templates = mg.randint(0, 6, (n,)).tolist(), mg.randint(0, 2, (n,)).tolist()
    changes = (mg.randint(1, 10, (n,))).tolist()  # a different digit: (d + change) % 10
    captions, matches = [], []
    for a, b, kind, template, change in zip(truth_left, truth_right, kinds, templates, changes):
        if kind < 3:  # a match
            claimed = (a, b)
        elif kind == 3 and a != b:  # swapped
            claimed = (b, a)
        elif kind % 2:  # the left digit changed
            claimed = ((a + change) % 10, b)
        else:
            claimed = (a, (b + change) % 10)
        captions.append(caption(*claimed, template))
        matches.append(claimed == (a, b))
    return regions, mg.tensor(captions), mg.tensor(matches, dtype=mg.float32)


class Detector(nn.Module):
    """The stand-in for ViLBERT's pre-trained Faster R-CNN: a small CNN that classifies one 8x8 digit.
    ``features`` gives a digit's region feature (B, 1, 8, 8) -> (B, F); ``forward`` its class logits (B, 10)."""

    def __init__(self, features: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 2 * 2, features), nn.ReLU(),
        )  # fmt: skip
        self.classifier = nn.Linear(features, 10)

    def forward(self, digits: mg.Tensor) -> mg.Tensor:
        return self.classifier(self.features(digits))


def pretrain_detector(train_digits, test_digits, args) -> tuple:
    """Train the detector on the training digits' classes, then freeze it: the region features of every
    training and held-out digit (N, F), and its accuracy on the held-out digits."""
    images, labels = train_digits
    detector = Detector(args.features)
    curves = fit(
        detector, lambda i: F.cross_entropy(detector(images[i]), labels[i]), len(labels),
        args.detector_epochs, 64, args.detector_lr, desc="detector epoch",
    )  # fmt: skip
    detector.eval()
    with mg.no_grad():
        features = [detector.features(digits) for digits, _ in (train_digits, test_digits)]
    return features, accuracy(detector, *test_digits), curves["train loss"]


class Regions(nn.Module):
    """Region features (B, 2, F) projected to the model's width, plus each region's place: (B, 2, C)."""

    def __init__(self, features: int, dim: int):
        super().__init__()
        self.project = nn.Linear(features, dim)
        self.position = nn.LearnedPositionalEncoding(dim, 2)

    def forward(self, regions: mg.Tensor) -> mg.Tensor:
        return self.position(self.project(regions))


class Words(nn.Module):
    """Caption ids (B, T) -> word embeddings plus positions (B, T, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(len(WORDS), dim)
        self.position = nn.LearnedPositionalEncoding(dim, CAPTION_LENGTH)

    def forward(self, ids: mg.Tensor) -> mg.Tensor:
        return self.position(self.embedding(ids))


def encoder_layer(dim: int, heads: int) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True)


class TwoStream(nn.Module):
    """ViLBERT: the caption passes a Transformer layer; then each block is a co-attention layer (each stream
    attends to the other) followed by a Transformer layer per stream. The score is a linear map of the
    product of the pooled image (mean of the regions) and the caption's [CLS]: (B,) logits."""

    def __init__(self, features: int, dim: int, heads: int, blocks: int):
        super().__init__()
        self.regions, self.words = Regions(features, dim), Words(dim)
        self.text_layer = encoder_layer(dim, heads)
        self.co_layers = nn.ModuleList(
            [nn.CoAttentionLayer(dim, dim, heads, 2 * dim, dropout=0.0, batch_first=True) for _ in range(blocks)]
        )
        self.visual_layers = nn.ModuleList([encoder_layer(dim, heads) for _ in range(blocks)])
        self.text_layers = nn.ModuleList([encoder_layer(dim, heads) for _ in range(blocks)])
        self.head = nn.Linear(dim, 1)

    def forward(self, regions: mg.Tensor, captions: mg.Tensor) -> mg.Tensor:
        visual, text = self.regions(regions), self.text_layer(self.words(captions))  # (B, 2, C), (B, T, C)
        for co_layer, visual_layer, text_layer in zip(self.co_layers, self.visual_layers, self.text_layers):
            visual, text = co_layer(visual, text)
            visual, text = visual_layer(visual), text_layer(text)
        return self.head(visual.mean(1) * text[:, 0]).squeeze(-1)


class SingleStream(nn.Module):
    """The baseline (VisualBERT-like): caption words and image regions, each with a type embedding, in one
    sequence (B, T + 2, C) through a Transformer encoder; the score is a linear map of [CLS]: (B,) logits."""

    def __init__(self, features: int, dim: int, heads: int, layers: int):
        super().__init__()
        self.regions, self.words = Regions(features, dim), Words(dim)
        self.types = nn.Embedding(2, dim)
        self.encoder = nn.TransformerEncoder(encoder_layer(dim, heads), layers)
        self.head = nn.Linear(dim, 1)

    def forward(self, regions: mg.Tensor, captions: mg.Tensor) -> mg.Tensor:
        text = self.words(captions) + self.types.weight[0]
        visual = self.regions(regions) + self.types.weight[1]
        return self.head(self.encoder(mg.cat([text, visual], dim=1))[:, 0]).squeeze(-1)


@mg.no_grad()
def matching_accuracy(model, regions, captions, matches, batch_size: int = 500) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(matches), batch_size):
        logits = model(regions[start : start + batch_size], captions[start : start + batch_size])
        correct += ((logits > 0).float() == matches[start : start + batch_size]).sum().item()
    model.train()
    return correct / len(matches)


def train(model, features, labels, test, steps: int, batch_size: int, lr: float, desc: str) -> dict:
    """AdamW with a one-cycle learning rate on freshly drawn pairs; returns the loss per step and the
    held-out matching accuracy every tenth of the run."""
    optimizer = nn.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = nn.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    losses, accuracies = [], []
    bar = progress(range(steps), desc)
    for step in bar:
        regions, captions, matches = pairs(features, labels, batch_size)
        loss = F.binary_cross_entropy_with_logits(model(regions, captions), matches)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % max(steps // 10, 1) == 0:
            accuracies.append((step + 1, matching_accuracy(model, *test)))
    return {"loss": losses, "accuracy": accuracies}


def main(argv=None) -> Result:
    args = arguments(argv, steps=2000, batch_size=64, lr=1e-3, dim=64, heads=4, blocks=1, test_pairs=2000,
                     features=64, detector_epochs=10, detector_lr=0.05)  # fmt: skip
    setup(args)
    quick = (60, 200, 32, 32, 5)  # steps, test pairs, batch size, width, detector epochs
    steps, test_pairs, batch_size, dim, args.detector_epochs = (
        quick if args.quick else (args.steps, args.test_pairs, args.batch_size, args.dim, args.detector_epochs)
    )
    images, labels = on_device(*load_digits())
    train_images, test_images, train_labels, test_labels = train_test_split(images, labels, test_size=297, seed=0)
    # The detector learns digits from the training split only; the held-out scenes use the other digits.
    with Timer() as timer:
        (train_features, test_features), detector_accuracy, detector_loss = pretrain_detector(
            (train_images.unsqueeze(1), train_labels), (test_images.unsqueeze(1), test_labels), args
        )
        print(f"detector: {detector_accuracy:.3f} accuracy on the held-out digits; frozen from here")
        test = pairs(test_features, test_labels, test_pairs)  # held-out digits, drawn once

        # The same width; the baseline gets as many Transformer layers as the two-stream model has layer-sized
        # parts (the caption's first layer, then per block a co-attention layer, which is two, and two more).
        models = {
            "two-stream": TwoStream(args.features, dim, args.heads, args.blocks),
            "single-stream": SingleStream(args.features, dim, args.heads, 1 + 4 * args.blocks),
        }
        curves, matched, counts = {"detector train loss": detector_loss}, {}, {}
        for name, model in models.items():
            counts[name] = parameters(model)
            print(f"{name}: {counts[name]:,} parameters")
            mg.manual_seed(args.seed)  # both models see the same training pairs
            history = train(model, train_features, train_labels, test, steps, batch_size, args.lr, name)
            curves[f"{name} train loss"] = history["loss"]
            curves[f"{name} test accuracy"] = history["accuracy"]
            matched[name] = history["accuracy"][-1][1]
    extra = {"single-stream accuracy": matched["single-stream"], "detector accuracy": round(detector_accuracy, 4)}
    extra |= {f"{name} parameters": count for name, count in counts.items()}
    result = Result("two-stream matching accuracy", matched["two-stream"], curves, extra, timer.seconds)
    return finish(result, args, "Image-caption matching on two-digit scenes")


if __name__ == "__main__":
    main()
