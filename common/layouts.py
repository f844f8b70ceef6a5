"""The dataset layouts the command lines read, by name: what each expects under its root
folder, and which have classes of their own. Kept apart from ``common.data`` (which loads
Paddle and OpenCV) so that ``--help`` can list them at once."""

# kind -> the layout it expects under the dataset root (also the help text of --dataset)
LAYOUTS = {
    "folder": "ROOT/<split>/images/ and ROOT/<split>/labels/, one label PNG per image with the "
              "same file name (a folder of your own)",
    "filelist": "ROOT/<split>_list.txt (or the file the split names), one 'image_path label_path' "
                "line per image, relative to ROOT (PaddleSeg / AI Studio datasets)",
    "voc": "ROOT is VOCdevkit/VOC2012: JPEGImages/, SegmentationClass/ (SegmentationClassAug/ "
           "for train_aug) and ImageSets/Segmentation/<split>.txt",
    "cityscapes": "ROOT/leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
                  "ROOT/gtFine/<split>/<city>/*_gtFine_labelIds.png (19 train ids)",
    "coco-panoptic": "ROOT/annotations/panoptic_<split>2017.json with its PNG folder beside it, "
                     "images in ROOT/<split>2017/ (trained as 133 semantic categories)",
}
# kinds whose classes are fixed by the dataset; the others need num_classes
FIXED_CLASSES = ("voc", "cityscapes", "coco-panoptic")
