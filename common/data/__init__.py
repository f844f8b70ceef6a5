"""Data: synthetic scenes and clips, datasets, joint transforms."""
from .datasets import SegFolder, SegmentationDataset, SyntheticScenes, read_image, read_label, synthetic_splits
from .synthetic import LABEL_DIVISOR, STUFF, VARIANTS, get_variant, make_clip, make_scene, make_scenes
from .transforms import (Compose, RandomCrop, RandomFlip, RandomScale, denormalize,
                         to_tensor_arrays, train_transform)
