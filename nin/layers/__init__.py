"""The building blocks: the 1x1 convolution as a Dense layer, BatchNorm, pooling, whitening.

They import nothing else of the project; models/ imports only them.

    from nin import layers
    layers.Conv1x1(features=192)        # nin/layers/conv.py
"""
from nin.layers.conv import IMPLS, Conv1x1, ConvUnit, MlpConv, fold_linear_1x1

__all__ = ['IMPLS', 'Conv1x1', 'ConvUnit', 'MlpConv', 'fold_linear_1x1']
