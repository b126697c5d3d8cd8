"""Frames of a `Trace`: top-down (Pillow, cheap), chase camera (pybullet tiny renderer, ~40 ms) or both stacked,
with the HUD (time, speed, steer/throttle bars, reward so far) and an outcome banner held ~1 s at the end.
Also the side-by-side grid used by comparison videos."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from racecar_env import Hud, TopDown, spec
from racecar_env.render import control_bars, draw_hud, font
from racecar_env.tracks import Goal, Track

FPS = int(round(1.0 / spec.CONTROL_DT))     # videos play in real time: one frame per control step
HOLD_SECONDS = 1.0
VIEWS = ("topdown", "chase", "both")
BANNERS = {"goal": ("GOAL", (90, 230, 130)), "crash": ("CRASH", (255, 90, 80)), "timeout": ("TIME OUT", (255, 200, 60)),
           "aborted": ("STOPPED", (200, 200, 200))}
LABEL_HEIGHT = 30                           # px strip above each comparison panel (even: keeps frames even)
LABEL_BG, LABEL_FG = (16, 18, 22), (255, 255, 255)


class ChaseView:
    """The pybullet chase camera for playback: a car placed at each recorded pose (no physics is stepped)."""

    def __init__(self, track: Track):
        from racecar_env.physics import CarSim
        self.sim = CarSim(track)

    def frame(self, x: float, y: float, yaw: float, steer: float, width: int, height: int) -> np.ndarray:
        self.sim.show_pose(x, y, yaw, steer)   # the recorded steering shows on the front wheels
        return self.sim.chase_image(x, y, yaw, width, height)

    def close(self) -> None:
        self.sim.close()


@dataclass
class TraceRenderer:
    """Draws frame `f` of a trace. Frame t < T shows the state after t steps; frames T..T+hold show the final state
    with the outcome banner, so every video holds its ending for ~HOLD_SECONDS."""
    track: Track
    view: str = "topdown"
    lidar: bool = False
    hold_frames: int = int(round(HOLD_SECONDS * FPS))
    topdown: TopDown = field(init=False)
    _chase: ChaseView | None = field(init=False, default=None)
    _cache: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {self.view!r}")
        self.topdown = TopDown(self.track)
        if self.view != "topdown":
            self._chase = ChaseView(self.track)
        w, h = self.topdown.size
        self._chase_size = (w, (w * 3 // 4) // 2 * 2)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of every frame."""
        w, h = self.topdown.size
        ch = self._chase_size[1]
        return w, {"topdown": h, "chase": ch, "both": h + ch}[self.view]

    def frame_count(self, trace) -> int:
        return trace.steps + 1 + self.hold_frames

    def _derived(self, trace) -> tuple[np.ndarray, np.ndarray]:
        """(positions (T+1, 2), return so far (T+1,)) of a trace, computed once per trace (the entry keeps the
        trace alive, so its id is not reused)."""
        entry = self._cache.get(id(trace))
        if entry is None:
            entry = self._cache[id(trace)] = (trace, trace.xy(),
                                              np.concatenate([[0.0], np.cumsum(trace.rewards, dtype=np.float64)]))
        return entry[1], entry[2]

    def hud(self, trace, t: int, banner: bool) -> Hud:
        o = trace.observations[t]
        a = trace.actions[min(t, trace.steps - 1)] if trace.steps else np.zeros(2, np.float32)
        seed = "" if trace.seed is None else f"  seed {trace.seed}"
        head = f"{trace.label}  ep {trace.episode}{seed}"
        if trace.meta.get("recorded"):  # a demo: its recorded outcome is known up front
            head += f"  [{BANNERS[trace.outcome][0].lower()}]"
        lines = [head, f"t {t * spec.CONTROL_DT:5.2f} s   v {float(spec.field(o, 'v_forward')):4.2f} m/s   "
                       f"return {self._derived(trace)[1][t]:7.2f}"]
        text, color = BANNERS[trace.outcome]
        if banner and trace.success:
            text += f"  {trace.time_to_goal:.2f} s"
        return Hud(lines=lines, bars=control_bars(a),
                   banner=text if banner else None, banner_color=color)

    def frame(self, trace, f: int) -> np.ndarray:
        t, banner = min(f, trace.steps), f >= trace.steps
        x, y, yaw = trace.pose(t)
        o = trace.observations[t]
        steer = float(spec.field(o, "steer_angle"))
        hud = self.hud(trace, t, banner)
        parts = []
        if self.view in ("topdown", "both"):
            gx, gy = (float(v) for v in trace.goals[t])
            parts.append(self.topdown.draw(x, y, yaw, steer_angle=steer, goal=Goal(gx, gy, self.track.goal.radius),
                                           trail=self._derived(trace)[0][: t + 1],
                                           lidar=o[spec.LIDAR_SLICE] if self.lidar else None))
        if self._chase is not None:
            parts.append(self._chase.frame(x, y, yaw, steer, *self._chase_size))
        img = Image.fromarray(parts[0])
        draw_hud(img, hud, self.topdown)  # on the first view: the top-down map, or the chase view alone
        parts[0] = np.asarray(img)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def frames(self, trace):
        for f in range(self.frame_count(trace)):
            yield self.frame(trace, f)

    def close(self) -> None:
        if self._chase is not None:
            self._chase.close()
            self._chase = None


def label_strip(text: str, width: int, height: int = LABEL_HEIGHT) -> np.ndarray:
    img = Image.new("RGB", (width, height), LABEL_BG)
    ImageDraw.Draw(img).text((width / 2, height / 2), text, fill=LABEL_FG, font=font(18), anchor="mm")
    return np.asarray(img)


@dataclass
class Grid:
    """Lays out equal-size panels, each under its label, `cols` per row (default: as square as possible)."""
    labels: list[str]
    panel_size: tuple[int, int]     # (width, height) of one panel without its label
    cols: int | None = None

    def __post_init__(self):
        n = len(self.labels)
        # up to 3 side by side in one row, then as square as possible (4 -> 2x2, 6 -> 3x2)
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
            x0, y0, x1, _ = self.panel_box(i)
            out[y0:y0 + LABEL_HEIGHT, x0:x1] = self._strips[i]
            out[y0 + LABEL_HEIGHT:y0 + LABEL_HEIGHT + p.shape[0], x0:x1] = p
        return out
