"""Commands that train the course's shipped weights, once, longer than a live notebook can.

Each module trains one recipe, writes float16 weights and a JSON (command, code version, seed,
recipe, held-out per-class IoU) into the repository's ``weights/`` folder, and ``load()``s them:
``python -m common.weights.fcn`` (Day 2's FCN-8s), ``python -m common.weights.deeplab NAME``
(Day 4). They train with the engine, so they live here and not in ``common.models`` (models
do not import the engine).
"""
