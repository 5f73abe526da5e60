"""Data: sources (nin/data/datasets.py, nin/data/image_folder.py), preprocessing
fitted on training images (nin/data/preprocess.py) and the on-device batching
and augmentation (nin/data/pipeline.py).

    from nin import data
    ds = data.load(config)              # uint8 arrays in host memory

Importing this package imports no JAX (the device check's parent decodes images with it).
"""
from nin.data.datasets import (
    CIFAR10_CLASSES, DATASETS, SPLITS, Dataset, hold_out, load, synthetic, validation_indices)

__all__ = ['CIFAR10_CLASSES', 'DATASETS', 'SPLITS', 'Dataset', 'hold_out', 'load', 'synthetic',
           'validation_indices']
