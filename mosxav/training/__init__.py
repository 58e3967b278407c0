"""Training: the method protocol and registry, the shared trainer, batches and augmentation, the
U-Net, losses, label noise and distributed set-up."""

from mosxav.training.protocol import BackboneOptions, Method, MethodOptions, available_methods, get_method

__all__ = ["BackboneOptions", "Method", "MethodOptions", "available_methods", "get_method"]
