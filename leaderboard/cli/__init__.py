"""The ``mosxav-bench`` sub-commands, one module per group, each command beside its options."""
