"""Data: datasets for every layout, paired transforms, label encoding, file reading and the synthetic generator."""

from .datasets import PairedDataset, build_dataset, check_dataset, dataset_info
from .io import load_input, read_instance, read_label, read_rgb
from .labels import boundary_map, check_label_range, colorize, one_hot

__all__ = [
    "PairedDataset",
    "boundary_map",
    "build_dataset",
    "check_dataset",
    "check_label_range",
    "colorize",
    "dataset_info",
    "load_input",
    "one_hot",
    "read_instance",
    "read_label",
    "read_rgb",
]
