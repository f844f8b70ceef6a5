"""Time to target: the first evaluation at the target, and the per-model summary over seeds."""
from common.course.bench import time_to_target as ttt


def _side(mious, per=10.0):
    return dict(log=[dict(it=50 * (i + 1), miou=m, wall=per * (i + 1), cpu=per * (i + 1)) for i, m in enumerate(mious)])


def test_reached_is_the_first_evaluation_at_the_target():
    assert ttt.reached(_side([0.2, 0.71, 0.69, 0.8]), 0.7) == (100, 20.0, 20.0)
    assert ttt.reached(_side([0.2, 0.3]), 0.7) is None


def test_summary_ratio_paddleseg_over_course():
    runs = [dict(cfg=dict(name="unet"), sides=dict(course=_side([0.5, 0.75]), paddleseg=_side([0.3, 0.5, 0.6, 0.72])))
            for _ in range(2)]
    text = ttt.summary(runs, 0.7)
    assert "unet: course" in text and "reached 2/2" in text and "PaddleSeg/course 2.00 [2.00-2.00]" in text
