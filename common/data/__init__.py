"""Data: synthetic scenes and clips, datasets, joint transforms."""
from .datasets import (LabelledFiles, SegFolder, SegmentationDataset, SyntheticScenes, read_image,
                       read_label, rgb_to_index, synthetic_splits)
from .synthetic import (LABEL_DIVISOR, PANOPTIC_VOID, STUFF, VARIANTS, convoy_clip, get_variant, make_clip, make_scene,
                        make_scenes)
from .synthetic import BOAT, CAR, DISC, GRASS, ROAD, SKY, SQUARE, TRIANGLE, WATER  # class ids
from .transforms import (Compose, RandomCrop, RandomFlip, RandomScale, denormalize,
                         to_tensor_arrays, train_transform)
from .real import (CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, VOC_CLASSES, CityscapesSegmentation,
                   COCOInstances, COCOPanoptic, FileListDataset, VOCSegmentation, voc_palette)
from .download import DATASETS, data_root, download, fetch_dataset
