"""Commands that train the course's shipped weights, once, longer than a live notebook can.

Each module trains one recipe, writes float16 weights and a JSON (command, code version, seed,
recipe, held-out per-class IoU) into the repository's ``weights/`` folder, and ``load()``s them:
``python -m common.weights.fcn`` (Day 2's FCN-8s), ``python -m common.weights.deeplab NAME``
(Day 4). They train with the engine, so they live here and not in ``common.models`` (models
do not import the engine).
"""


def load_shipped(model_name, model_kwargs, weights_dir, stem, command, check_meta=True):
    """Build ``model_name`` and load the float16 weights ``<stem>.pdparams`` from ``weights_dir``.

    Args:
        model_name: the ``build_model`` name (7 scene classes).
        model_kwargs: its builder's keyword arguments (the recipe's).
        weights_dir: folder of ``<stem>.pdparams`` and ``<stem>.json``.
        stem: file name without extension.
        command: the command that writes the files, named when one is missing.
        check_meta: require the JSON too.
    Returns:
        the model in eval mode; ``model.config`` is the JSON (``{}`` without ``check_meta``).
    Raises:
        FileNotFoundError: naming the missing file and ``command``.
    """
    import json
    from pathlib import Path

    from common.models import build_model
    from common.models.pretrained import load_float16

    path, meta_path = Path(weights_dir) / f"{stem}.pdparams", Path(weights_dir) / f"{stem}.json"
    for p in (path, meta_path) if check_meta else (path,):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: run `{command}`")
    model = load_float16(build_model(model_name, 7, **model_kwargs), path, command)
    model.config = json.loads(meta_path.read_text()) if check_meta else {}
    return model
