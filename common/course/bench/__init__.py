"""The course's benchmarks: how fast each model, the data and the inference engines run here.

    python -m common.course.bench [--size 96] [--batch 4] [--models fcn8s unet ...]   # make bench
    python -m common.course.bench paddleseg [--size 128 256]        # make bench-paddleseg
    python -m common.course.bench engines [--models unet] [--clock cpu]
    python -m common.course.bench predict-cli [--models deeplabv3plus unet]
    python -m common.course.bench gpu [--size 256] [--batch 8]      # make gpu-check

- ``throughput``: CPU threads (one against all cores, MKL's kernels), data speed, and
  training / inference images per second of every model at the course's CPU size
  (``BENCH_MODELS``: ``common.models.presets``' "cpu" preset);
- ``paddleseg``: ours against PaddleSeg's model of the same architecture, full size;
- ``engines``: ``common.deploy``'s engines against each other (``bench_engines``) and whole
  ``python -m common.predict`` runs (``bench_cli``);
- ``gpu``: on a GPU, every model trains a few mixed-precision steps and predicts;
- ``steps``: a training and an inference step of any model (stand-in targets for the instance
  and panoptic models) and their rate, shared by the benchmarks.
"""
