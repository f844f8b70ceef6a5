"""The course's tools, built on the library in ``common``:

- ``exercises``, ``student``, ``checkin``: the homework checks, the student release, the check-in;
- ``widgets``, ``diagram``, ``receptive_field``: the notebooks' interactive demos, block diagrams
  traced from the models, the receptive-field tool;
- ``experiments/``: the ablations behind the lessons' claims (``make experiments``);
- ``weights/``: the recipes of the shipped course weights (``make weights``);
- ``bench/``: the benchmarks (``make bench``, ``make bench-paddleseg``, the inference engines, and
  ``make gpu-check``);
- ``paths``: the course checkout's folders (``results/``, ``weights/``, the days).

The library never imports this package (``tests/test_package_layers.py`` enforces the direction).
"""
