"""Figure helpers whose pixels the notebooks rely on."""
import numpy as np

from common import viz


def test_instance_map_paints_confident_masks_on_top_and_drops_low_scores():
    masks = np.zeros((3, 4, 5), bool)
    masks[0, :2, :3] = True          # score 0.9, overlapped by the 0.6 mask below
    masks[1, 1:3, 2:5] = True        # score 0.6
    masks[2, 3, :] = True            # score 0.2: below the threshold
    m = viz.instance_map(dict(masks=masks, scores=np.array([0.9, 0.6, 0.2])), score_thresh=0.5)
    expected = np.zeros((4, 5), np.int64)
    expected[1:3, 2:5] = 2
    expected[:2, :3] = 1             # the more confident mask wins the overlap (1, 2)
    np.testing.assert_array_equal(m, expected)
    empty = viz.instance_map(dict(masks=np.zeros((0, 4, 5), bool), scores=np.zeros(0)))
    assert empty.shape == (4, 5) and not empty.any()
