"""Homework checks (每日打卡): run a student's function against the course's references.

Every ``check_*`` takes the student's function (or functions), runs it on several cases,
small hand examples first and then random shapes, and compares the result with the
reference in ``common`` or Paddle. It prints one verdict, like a teacher would:

* ``✓ check_miou: passed 5 cases``;
* ``✗ check_miou: case 2 of 5 (...) failed`` with the inputs' shapes, what was expected and
  what came back (the whole arrays when they are small, else the first wrong element), and
  a hint: a specific one when the answer equals a known mistake (kernel not rotated,
  ``align_corners`` flipped, ignored pixels counted...), else a general one;
* ``… check_miou: not done yet`` when the function still raises ``NotImplementedError``.

No exception escapes a check. Each returns a :class:`CheckResult` and records it in
``RESULTS`` (the latest result per check), which ``common.course.checkin`` collects. ``DAYS``
lists the checks of each day's ``exercises.ipynb``.

Layout: ``framework`` (cases, comparison, verdicts, the ``@check(day)`` decorator) and one
module per day, ``day1`` … ``day6``, each holding that day's checks.
"""
from .framework import (DAYS, FAILED, NOT_DONE, PASSED, RESULTS, Case, CheckResult, check, compare,
                        reset, results, run_check)
from .day1 import check_confusion_matrix, check_miou, check_train_step
from .day2 import (check_bilinear_resize, check_fc_to_conv, check_fcn_fuse, check_fcn_logits, check_max_unpool,
                   check_transposed_conv)
from .day3 import check_crop_concat, check_psp_module, check_receptive_field
from .day3 import check_receptive_interval, check_valid_tile
from .day4 import check_aspp_concat, check_aspp_sum, check_atrous_conv, check_meanfield_step
from .day5 import check_gcu_projection, check_gi_reasoning, check_glore_unit, check_graph_conv
from .day6 import check_box_iou, check_grouping, check_link, check_nms, check_pq, check_roi_align

ALL_CHECKS = [name for names in DAYS.values() for name in names]
