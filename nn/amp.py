"""``nn.amp.GradScaler``: dynamic loss scaling for mixed-precision training (defined in ``minigrad.amp``
beside ``autocast``)."""

from minigrad.amp import GradScaler

__all__ = ["GradScaler"]
