"""`common.bench`'s multiply-accumulate counter, against counts worked out by hand."""
import common  # noqa: F401  (threads before Paddle)
import paddle
import paddle.nn as nn

from common.bench import count_macs


class _Net(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, padding=1)                 # 8 x 10 x 10 outputs x 27
        self.group = nn.Conv2D(8, 8, 3, padding=1, groups=4)      # 8 x 10 x 10 outputs x 2*9
        self.up = nn.Conv2DTranspose(8, 4, 2, stride=2)           # 8 x 10 x 10 inputs x 4*2*2
        self.fc = nn.Linear(20, 6)                                # 4 x 20 rows x 6 x 20

    def forward(self, x):
        y = self.up(self.group(self.conv(x)))                     # (1, 4, 20, 20)
        return self.fc(y[0])                                      # (4, 20, 6)


def test_count_macs_by_hand():
    macs = count_macs(_Net(), paddle.randn([1, 3, 10, 10]))
    assert macs == 800 * 27 + 800 * 18 + 800 * 16 + 4 * 20 * 6 * 20
