"""Equal-size panels side by side, each under a label strip: comparison videos and grids over several tracks."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from racecar_env.render import font

LABEL_HEIGHT = 30                           # px strip above each panel (even: keeps frames even)
LABEL_BG, LABEL_FG = (16, 18, 22), (255, 255, 255)


def label_strip(text: str, width: int, height: int = LABEL_HEIGHT) -> np.ndarray:
    img = Image.new("RGB", (width, height), LABEL_BG)
    d = ImageDraw.Draw(img)
    size = 18
    while size > 10 and d.textlength(text, font=font(size)) > width - 8:  # long labels shrink to fit
        size -= 1
    d.text((width / 2, height / 2), text, fill=LABEL_FG, font=font(size), anchor="mm")
    return np.asarray(img)


@dataclass
class Grid:
    """Lays out equal-size panels, each under its label, `cols` per row (default: up to 3 in a row, then as square
    as possible: 4 -> 2x2, 6 -> 3x2, 12 -> 4x3)."""
    labels: list[str]
    panel_size: tuple[int, int]     # (width, height) of one panel without its label
    cols: int | None = None

    def __post_init__(self):
        n = len(self.labels)
        self.cols = self.cols or (n if n <= 3 else math.ceil(math.sqrt(n)))
        self.rows = math.ceil(n / self.cols)
        w, _ = self.panel_size
        self._strips = [label_strip(t, w) for t in self.labels]

    @property
    def size(self) -> tuple[int, int]:
        w, h = self.panel_size
        return w * self.cols, (h + LABEL_HEIGHT) * self.rows

    def panel_box(self, i: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of panel i's label strip + frame in the composed image."""
        w, h = self.panel_size
        r, c = divmod(i, self.cols)
        return c * w, r * (h + LABEL_HEIGHT), (c + 1) * w, (r + 1) * (h + LABEL_HEIGHT)

    def compose(self, panels: list[np.ndarray]) -> np.ndarray:
        W, H = self.size
        out = np.empty((H, W, 3), np.uint8)
        out[:] = LABEL_BG
        for i, p in enumerate(panels):
            if p.shape[1::-1] != tuple(self.panel_size):
                raise ValueError(f"panel {i} is {p.shape[1]}x{p.shape[0]}, the grid's panels are "
                                 f"{self.panel_size[0]}x{self.panel_size[1]}")
            x0, y0, x1, _ = self.panel_box(i)
            out[y0:y0 + LABEL_HEIGHT, x0:x1] = self._strips[i]
            out[y0 + LABEL_HEIGHT:y0 + LABEL_HEIGHT + p.shape[0], x0:x1] = p
        return out
