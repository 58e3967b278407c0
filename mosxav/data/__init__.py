"""Data: the MOSXAV layout, reading and writing its files, the dataset classes, splits and partitions,
download, Hugging Face ``datasets``, EndoScapes2023, image/mask pair folders and the synthetic generator."""
