"""NumPy reference operators that the notebooks build by hand and check against Paddle.

Every function takes float32 arrays: an image-like ``x`` is (C, H, W) or (N, C, H, W)
(``bilinear_resize`` also takes (H, W)) and the result has the same rank. They are
written for reading, vectorised with NumPy, and tested against Paddle's built-ins in
``tests/lib/ops/test_ops.py``; models use Paddle's own layers, never these.

``common.ops.boxes`` is the exception: the box operations of the detectors (IoU, box coding,
matching, NMS, mask crop/paste) on Paddle tensors, which Mask R-CNN and UPSNet use, with
the NumPy references ``nms_numpy`` and ``roi_align_numpy`` beside them.
"""
from . import boxes
from .conv import (atrous_conv2d, conv2d, conv_matrix, conv_output_size, dilate_kernel,
                   transposed_conv2d, transposed_conv2d_scatter, transposed_conv_output_size,
                   zero_insert)
from .fc import fc_to_conv, fc_weight_to_conv
from .interpolate import bilinear_resize, source_coords
from .pooling import max_pool2d_with_indices, max_unpool2d, random_pool_indices

__all__ = ["atrous_conv2d", "bilinear_resize", "boxes", "conv2d", "conv_matrix", "conv_output_size",
           "dilate_kernel", "fc_to_conv", "fc_weight_to_conv", "max_pool2d_with_indices",
           "max_unpool2d", "random_pool_indices", "source_coords", "transposed_conv2d",
           "transposed_conv2d_scatter", "transposed_conv_output_size", "zero_insert"]
