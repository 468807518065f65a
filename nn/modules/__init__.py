"""PyTorch's import path for the module base: ``nn.modules.module.register_module_forward_hook``."""

from nn.modules import module
