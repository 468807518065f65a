"""The names of ``torch.nn.modules.module`` that minigrad has, from where they live (nn/module.py)."""

from nn.module import (  # noqa: F401
    Module,
    RemovableHandle,
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
