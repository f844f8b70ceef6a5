"""The course's tools, built on the library in ``common``: homework checks and their release
(``exercises``, ``student``, ``checkin``), the notebooks' widgets and diagrams, the
receptive-field tool, the ablations behind the lessons (``experiments``), the recipes of the
shipped weights (``weights``), benchmarks (``bench``) and the GPU check (``gpu_check``).

The library never imports this package (``tests`` enforces the direction).
"""
