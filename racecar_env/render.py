"""Drawing the track and car from a pose: the cheap top-down view (Pillow, ~0.2 ms) and the pybullet chase camera.

The top-down renderer only needs poses, not physics, so the viewer uses the same code to play back recorded
observations exactly. HUD text and bars are passed in by the caller (env, recorder, viewer) so all draw alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import spec
from .physics import CAR_LENGTH, CAR_WIDTH
from .tracks import Goal, Track

BACKGROUND = (34, 38, 44)
HUD_PANEL = (240, 110)   # px: about the HUD panel of an episode video (4 lines, 2 bars), for picking its corner
WALL = (196, 198, 206)
CENTERLINE = (70, 78, 90)
GOAL_FILL = (40, 150, 80)
GOAL_RING = (90, 230, 130)
CAR = (235, 90, 40)
CAR_FRONT = (255, 210, 120)
TRAIL = (80, 170, 255)
TEXT = (235, 235, 235)
LIDAR = (120, 120, 60)
MAX_ASPECT = 3.0   # a natural-size canvas is at most 3:1 either way (padded around the track)


@dataclass
class Hud:
    """What the HUD shows. Lines are free text; bars are (label, value in [-1, 1])."""
    lines: Sequence[str] = ()
    bars: Sequence[tuple[str, float]] = ()
    banner: str | None = None           # big centred text, e.g. "GOAL" / "CRASH"
    banner_color: tuple[int, int, int] = (90, 230, 130)


def control_bars(action) -> list[tuple[str, float]]:
    """HUD bars for a (steer, throttle) action. Steer +1 is left, but a bar grows to the right for + values, so the
    steer bar shows -steer: the bar points where the car turns."""
    return [("steer", -float(action[0])), ("throttle", float(action[1]))]


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


@dataclass
class TopDown:
    """Top-down view of one track. `draw()` returns an (H, W, 3) uint8 frame; width and height are even so the frames
    encode to yuv420p H.264 directly.

    Scale: `px_per_m`, reduced if the track would exceed `max_size` (raised if it would not fill `min_size`); the
    canvas is at least `min_size` and at most MAX_ASPECT:1, the track centred in it (a tiny track or a long narrow
    corridor still gets a frame the HUD and banner fit in). Or, with `size=(w, h)`, the track fitted and centred in
    exactly that canvas (panels of a grid over different tracks all have one size)."""
    track: Track
    px_per_m: float = 40.0
    margin_m: float = 0.4
    max_size: tuple[int, int] = (1280, 960)
    min_size: tuple[int, int] = (360, 240)
    size: tuple[int, int] | None = None
    _bg: Image.Image = field(init=False, repr=False)

    def __post_init__(self):
        xmin, ymin, xmax, ymax = self.track.bounds
        span_x, span_y = xmax - xmin + 2 * self.margin_m, ymax - ymin + 2 * self.margin_m
        box = self.size or self.max_size
        fit = min(box[0] / span_x, box[1] / span_y)
        if self.size is None:
            lo = self.min_size
            self.px_per_m = min(max(self.px_per_m, min(lo[0] / span_x, lo[1] / span_y)), fit)
            w, h = int(math.ceil(span_x * self.px_per_m)), int(math.ceil(span_y * self.px_per_m))
            # pad (never stretch) a thin canvas: a 192 m x 0.9 m corridor was a 10 x 960 px strip, HUD clipped
            w, h = max(w, lo[0], math.ceil(h / MAX_ASPECT)), max(h, lo[1], math.ceil(w / MAX_ASPECT))
            self.size = (w + w % 2, h + h % 2)
        else:
            self.px_per_m = fit
        w, h = self.size
        # centre the track in the canvas
        self.x0 = xmin - self.margin_m - (w / self.px_per_m - span_x) / 2
        self.y1 = ymax + self.margin_m + (h / self.px_per_m - span_y) / 2
        self.font, self.small, self.big = font(15), font(12), font(40)
        self._bg = self._background()
        self._goal_cache: tuple[tuple[float, float, float], Image.Image] | None = None
        self.hud_corner = self._emptiest_corner()

    def to_px(self, x, y):
        """World metres -> pixel coordinates (north up). Works on scalars and arrays."""
        return (np.asarray(x) - self.x0) * self.px_per_m, (self.y1 - np.asarray(y)) * self.px_per_m

    def _background(self) -> Image.Image:
        img = Image.new("RGB", self.size, BACKGROUND)
        d = ImageDraw.Draw(img)
        cl = self.track.centerline
        px, py = self.to_px(cl[:, 0], cl[:, 1])
        d.line(list(zip(px.tolist(), py.tolist())), fill=CENTERLINE, width=2)
        t = self.track.wall_thickness
        for x1, y1, x2, y2 in self.track.walls:
            # the wall box, extended by half the thickness at both ends (as in the physics)
            ang = math.atan2(y2 - y1, x2 - x1)
            ux, uy = math.cos(ang) * t / 2, math.sin(ang) * t / 2
            corners = [(x1 - ux - uy, y1 - uy + ux), (x2 + ux - uy, y2 + uy + ux),
                       (x2 + ux + uy, y2 + uy - ux), (x1 - ux + uy, y1 - uy - ux)]
            d.polygon([tuple(map(float, self.to_px(cx, cy))) for cx, cy in corners], fill=WALL)
        s = self.track.start
        sx, sy = self.to_px(s.x, s.y)
        nx, ny = -math.sin(s.yaw) * 0.8, math.cos(s.yaw) * 0.8  # start line across the corridor
        a, b = self.to_px(s.x - nx, s.y - ny), self.to_px(s.x + nx, s.y + ny)
        d.line([tuple(map(float, a)), tuple(map(float, b))], fill=(150, 150, 150), width=2)
        return img

    def _emptiest_corner(self) -> str:
        """The canvas corner where a HUD panel hides the least of the track (walls, centre-line, goal): top-left
        unless another is emptier (on the hairpin the goal and the last straight sit top-left)."""
        img = np.asarray(self._with_goal(self.track.goal))
        w, h = self.size
        pw, ph = min(HUD_PANEL[0], w), min(HUD_PANEL[1], h)
        busy = (img != np.asarray(BACKGROUND, dtype=np.uint8)).any(-1)
        boxes = {"tl": busy[:ph, :pw], "tr": busy[:ph, w - pw:], "bl": busy[h - ph:, :pw], "br": busy[h - ph:, w - pw:]}
        counts = {k: int(v.sum()) for k, v in boxes.items()}
        return "tl" if counts["tl"] <= min(counts.values()) else min(counts, key=counts.get)

    def _with_goal(self, goal: Goal) -> Image.Image:
        key = (goal.x, goal.y, goal.radius)
        if self._goal_cache is None or self._goal_cache[0] != key:
            img = self._bg.copy()
            d = ImageDraw.Draw(img, "RGBA")
            gx, gy = self.to_px(goal.x, goal.y)
            r = goal.radius * self.px_per_m
            d.ellipse([gx - r, gy - r, gx + r, gy + r], fill=GOAL_FILL + (90,), outline=GOAL_RING, width=2)
            d.text((float(gx), float(gy)), "GOAL", fill=GOAL_RING, font=self.small, anchor="mm")
            self._goal_cache = (key, img)
        return self._goal_cache[1]

    def draw(self, x: float, y: float, yaw: float, *, steer_angle: float = 0.0, goal: Goal | None = None,
             trail: np.ndarray | None = None, lidar: np.ndarray | None = None, hud: Hud | None = None,
             extra_cars: Sequence[tuple[float, float, float, tuple[int, int, int]]] = ()) -> np.ndarray:
        img = (self._with_goal(goal) if goal is not None else self._bg).copy()
        d = ImageDraw.Draw(img)
        if trail is not None and len(trail) > 1:
            px, py = self.to_px(trail[:, 0], trail[:, 1])
            d.line(list(zip(px.tolist(), py.tolist())), fill=TRAIL, width=2)
        if lidar is not None:
            from .spec import LIDAR_ANGLES
            cx, cy = self.to_px(x, y)
            for a, r in zip(LIDAR_ANGLES, lidar):
                ex, ey = self.to_px(x + r * math.cos(yaw + a), y + r * math.sin(yaw + a))
                d.line([(float(cx), float(cy)), (float(ex), float(ey))], fill=LIDAR, width=1)
        for ox, oy, oyaw, color in extra_cars:
            self._car(d, ox, oy, oyaw, 0.0, color)
        self._car(d, x, y, yaw, steer_angle, CAR)
        if hud is not None:
            draw_hud(img, hud, self, self.hud_corner)
        return np.asarray(img)

    def _car(self, d: ImageDraw.ImageDraw, x, y, yaw, steer, color) -> None:
        c, s = math.cos(yaw), math.sin(yaw)
        hl, hw = CAR_LENGTH / 2, CAR_WIDTH / 2

        def world(lx, ly):
            return tuple(map(float, self.to_px(x + lx * c - ly * s, y + lx * s + ly * c)))

        d.polygon([world(hl, hw), world(hl, -hw), world(-hl, -hw), world(-hl, hw)], fill=color, outline=(20, 20, 20))
        d.polygon([world(hl, hw * 0.8), world(hl, -hw * 0.8), world(hl * 0.55, -hw * 0.8), world(hl * 0.55, hw * 0.8)],
                  fill=CAR_FRONT)
        # front wheels turned by the steering angle: shows what the driver is doing
        for side in (hw, -hw):
            wx, wy = hl * 0.62, side
            dx, dy = 0.07 * math.cos(steer), 0.07 * math.sin(steer)
            d.line([world(wx - dx, wy - dy), world(wx + dx, wy + dy)], fill=(15, 15, 15), width=4)


def draw_hud(img: Image.Image, hud: Hud, fonts: "TopDown", corner: str = "tl") -> None:
    """The HUD on a dark panel in a corner (tl, tr, bl, br; a top-down view picks the one that hides the least of
    its track), and the banner centred. Plain text on a panel, not outlined text: stroked text costs ~1.6 ms a line,
    most of a video frame's budget; this is ~5x cheaper and as readable."""
    d = ImageDraw.Draw(img)
    w, h = img.size
    panel_h = 8 + 18 * len(hud.lines) + 16 * len(hud.bars)
    panel_w = max([180] + [int(d.textlength(line, font=fonts.font)) + 16 for line in hud.lines])
    left = 0 if corner[1] == "l" else max(0, w - panel_w - 1)
    top = 0 if corner[0] == "t" else max(0, h - panel_h - 1)
    if hud.lines or hud.bars:
        d.rectangle([left, top, left + panel_w, top + panel_h], fill=(12, 14, 18))
    y = top + 5
    for line in hud.lines:
        d.text((left + 8, y), line, fill=TEXT, font=fonts.font)
        y += 18
    for label, value in hud.bars:
        value = max(-1.0, min(1.0, float(value)))
        d.text((left + 8, y), label, fill=TEXT, font=fonts.small)
        x0, x1, mid = left + 70, left + 170, left + 120
        d.rectangle([x0, y + 3, x1, y + 12], outline=TEXT)
        end = mid + value * (x1 - mid)
        d.rectangle([min(mid, end), y + 4, max(mid, end), y + 11], fill=(90, 200, 255) if value >= 0 else (255, 140, 90))
        y += 16
    if hud.banner:  # shown for about a second at an episode's end: the outlined big text is affordable there
        d.text((w / 2, h / 2), hud.banner, fill=hud.banner_color, font=fonts.big, anchor="mm",
               stroke_width=3, stroke_fill=(0, 0, 0))


# --- an episode as frames ---------------------------------------------------------------------------------------------
VIEWS = ("topdown", "chase", "both")
BANNERS = {"success": ("GOAL", (90, 230, 130)), "crash": ("CRASH", (255, 90, 80)),
           "timeout": ("TIME OUT", (255, 200, 60)), "aborted": ("STOPPED", (200, 200, 200))}
HOLD_SECONDS = 1.0


class EpisodeRenderer:
    """Frames of recorded or rolled-out Episodes, drawn from their observations (no physics is stepped), on each
    episode's own track. Frame t <= T shows the state after t steps; frames after T hold the final state under the
    outcome banner for HOLD_SECONDS, so every video shows how it ended.

    view: "topdown" (Pillow, ~1 ms), "chase" (pybullet camera behind the car, ~50 ms) or "both" stacked.
    size: (w, h) of the top-down part; None = each track at its natural scale (single videos), a fixed size for
    grids whose panels show different tracks.
    """

    def __init__(self, view: str = "topdown", *, size: tuple[int, int] | None = None, lidar: bool = False,
                 fps: int = 20):
        if view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        self.view, self.fixed_size, self.lidar = view, size, lidar
        self.hold_frames = int(round(HOLD_SECONDS * fps))
        self._topdowns: dict[str, TopDown] = {}
        self._sim = None
        self._derived: dict[int, tuple] = {}

    def topdown(self, track: Track) -> TopDown:
        td = self._topdowns.get(track.track_id)
        if td is None:
            td = self._topdowns[track.track_id] = TopDown(track, size=self.fixed_size)
        return td

    def size(self, track: Track) -> tuple[int, int]:
        """(width, height) of this track's frames."""
        w, h = self.topdown(track).size
        ch = (w * 3 // 4) // 2 * 2
        return w, {"topdown": h, "chase": ch, "both": h + ch}[self.view]

    def frame_count(self, episode) -> int:
        return episode.steps + 1 + self.hold_frames

    def _positions_and_returns(self, episode) -> tuple[np.ndarray, np.ndarray]:
        entry = self._derived.get(id(episode))
        if entry is None or entry[0] is not episode:
            o = episode.observations["observation"]
            xy = np.stack([spec.field(o, "x"), spec.field(o, "y")], axis=1)
            ret = np.concatenate([[0.0], np.cumsum(episode.rewards, dtype=np.float64)])
            entry = self._derived[id(episode)] = (episode, xy, ret)
        return entry[1], entry[2]

    def hud(self, episode, t: int, banner: bool, label: str = "", index: int | None = None) -> Hud:
        o = episode.observations["observation"][t]
        a = episode.actions[min(t, episode.steps - 1)]
        seed = episode.meta.get("seed")
        head = "  ".join(x for x in (label, "" if index is None else f"ep {index}",
                                     "" if seed is None else f"seed {seed}",
                                     episode.track.name if episode.track else "") if x)
        lines = [head, f"t {t * spec.CONTROL_DT:5.2f} s   v {float(spec.field(o, 'v_forward')):4.2f} m/s   "
                       f"return {self._positions_and_returns(episode)[1][t]:7.2f}"]
        text, color = BANNERS[episode.outcome]
        if banner and episode.success:
            text += f"  {episode.steps * spec.CONTROL_DT:.2f} s"
        return Hud(lines=lines, bars=control_bars(a), banner=text if banner else None, banner_color=color)

    def frame(self, episode, f: int, label: str = "", index: int | None = None) -> np.ndarray:
        track = episode.track
        if track is None:
            raise ValueError("episode has no track to draw it on")
        t, banner = min(f, episode.steps), f >= episode.steps
        o = episode.observations["observation"][t]
        x, y = float(spec.field(o, "x")), float(spec.field(o, "y"))
        yaw = math.atan2(float(spec.field(o, "sin_yaw")), float(spec.field(o, "cos_yaw")))
        steer = float(spec.field(o, "steer_angle"))
        td = self.topdown(track)
        hud = self.hud(episode, t, banner, label, index)
        parts = []
        if self.view in ("topdown", "both"):   # the HUD goes on the first view: drawn with the map in one pass
            gx, gy = (float(v) for v in episode.observations["desired_goal"][t])
            parts.append(td.draw(x, y, yaw, steer_angle=steer, goal=Goal(gx, gy, track.goal.radius),
                                 trail=self._positions_and_returns(episode)[0][: t + 1],
                                 lidar=o[spec.LIDAR_SLICE] if self.lidar else None, hud=hud))
        if self.view in ("chase", "both"):
            from .physics import CarSim
            if self._sim is None:
                self._sim = CarSim(track)
            self._sim.set_track(track)
            self._sim.show_pose(x, y, yaw, steer)   # the recorded steering shows on the front wheels
            w = td.size[0]
            chase = self._sim.chase_image(x, y, yaw, w, (w * 3 // 4) // 2 * 2)
            if not parts:
                img = Image.fromarray(chase)
                draw_hud(img, hud, td)
                chase = np.asarray(img)
            parts.append(chase)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def frames(self, episode, label: str = "", index: int | None = None):
        for f in range(self.frame_count(episode)):
            yield self.frame(episode, f, label, index)

    def last_frame(self, episode, label: str = "") -> np.ndarray:
        """The final state with the whole trail and the outcome banner: a picture of the episode."""
        return self.frame(episode, episode.steps + 1, label)

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None
