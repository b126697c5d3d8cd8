"""Generate tracks from the command line: one track as JSON, or a gallery PNG of many.

    python -m racecar_env.tracks --seed 5 --out t.json
    python -m racecar_env.tracks --seed 5 --difficulty hard --out t.json
    python -m racecar_env.tracks --gallery 12 --first-seed 0 --out gallery.png

--out is written atomically and never replaces a file this command did not write: an existing --seed output must be
a generated track's JSON, an existing --gallery output a PNG.
"""
from __future__ import annotations

if __name__ == "__main__":   # a Ctrl-C while the program loads ends it quietly; racecar_env.cli.entry takes over
    import signal
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import math
import sys
from pathlib import Path

from .. import cli
from ..files import unwritable
from .generate import DIFFICULTIES, TEST_SEEDS, TRAIN_SEEDS, GeneratorConfig, generate, make_config, track_kind
from .model import Track, TrackError

TILE = 360          # px, square drawing area of one gallery tile
LABEL_H = 40        # px of label text under each tile
PROG = "python -m racecar_env.tracks"


class _Parser(cli.ArgumentParser):
    def error(self, message):  # one line, exit 2 (returned by main, so callers in-process get the code)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _pair(kind):
    def parse(text: str):
        try:
            parts = [kind(p) for p in text.replace(",", " ").split()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected LOW,HIGH numbers, got {text!r}") from None
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}")
        return tuple(parts)
    return parse


def build_parser() -> argparse.ArgumentParser:
    d = GeneratorConfig()
    ap = _Parser(
        prog=PROG,
        description="Generate walled corridor tracks (racecar_env.tracks.generate): --seed writes one track JSON, "
                    "--gallery writes a PNG of N tracks side by side. A track is a pure function of its seed and "
                    "parameters; the JSON's 'generator' key records both. "
                    f"Seed ranges: training {TRAIN_SEEDS.start}..{TRAIN_SEEDS.stop - 1}, "
                    f"test {TEST_SEEDS.start}..{TEST_SEEDS.stop - 1}.",
        epilog="Examples: --seed 5 --out t.json | --seed 5 --difficulty hard --max-turn-deg 100 --out t.json | "
               "--gallery 12 --first-seed 1000000 --out gallery.png. "
               "load_track('gen:5') and load_track('gen:5:hard') give the same tracks as --seed 5 [--difficulty hard].")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=int, help="write the track of this seed (an integer >= 0) as JSON")
    what.add_argument("--gallery", type=int, metavar="N", help="write a PNG of N tracks, seeds FIRST..FIRST+N-1")
    ap.add_argument("--out", required=True, type=Path, help="output file (.json for --seed, .png for --gallery)")
    ap.add_argument("--first-seed", type=int, default=0, metavar="S", help="first seed of the gallery (default 0)")
    ap.add_argument("--cols", type=int, default=None, help="gallery columns (default: about square)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    g = ap.add_argument_group("generator parameters (default: GeneratorConfig's ranges)")
    g.add_argument("--difficulty", choices=list(DIFFICULTIES),
                   help="preset turn-angle and width ranges: "
                        + "; ".join(f"{k}: turns {v['min_turn_deg']:.0f}-{v['max_turn_deg']:.0f} deg, free width "
                                    f"{v['free_width'][0]}-{v['free_width'][1]} m" for k, v in DIFFICULTIES.items())
                        + " (the flags below override it)")
    g.add_argument("--min-turn-deg", type=float, help=f"smallest turn magnitude (default {d.min_turn_deg:.0f})")
    g.add_argument("--max-turn-deg", type=float, help=f"largest turn magnitude (default {d.max_turn_deg:.0f})")
    g.add_argument("--free-width", type=_pair(float), metavar="LO,HI",
                   help=f"corridor free width range in m, one draw per track (default {d.free_width[0]},"
                        f"{d.free_width[1]}); one number fixes it")
    g.add_argument("--corners", type=_pair(int), metavar="LO,HI",
                   help=f"number of corners range (default {d.min_corners},{d.max_corners})")
    g.add_argument("--straight", type=_pair(float), metavar="LO,HI",
                   help=f"clear straight length range in m (default {d.straight[0]},{d.straight[1]})")
    return ap


def _overrides(args) -> dict:
    out = {}
    if args.min_turn_deg is not None:
        out["min_turn_deg"] = args.min_turn_deg
    if args.max_turn_deg is not None:
        out["max_turn_deg"] = args.max_turn_deg
    if args.free_width is not None:
        out["free_width"] = args.free_width
    if args.straight is not None:
        out["straight"] = args.straight
    if args.corners is not None:
        out["min_corners"], out["max_corners"] = args.corners
    return out


def tile_label(track: Track) -> list[str]:
    k = track_kind(track) or {}
    seed = track.extra.get("generator", {}).get("seed", track.name)
    turns = [abs(a) for a in k.get("turns_deg", [])]
    line2 = (f"{k.get('corners', '?')} corners  turns {min(turns):.0f}-{max(turns):.0f} deg  "
             f"width {k.get('free_width', 0):.2f} m") if turns else track.name
    return [f"seed {seed}", line2]


def gallery_image(tracks: list[Track], cols: int | None = None):
    """A PIL image: one tile per track, each track fitted into its tile, labelled with seed, corners, turns, width."""
    from PIL import Image, ImageDraw

    from ..render import BACKGROUND, TEXT, TopDown, font

    cols = cols or max(1, math.ceil(math.sqrt(len(tracks))))
    rows = math.ceil(len(tracks) / cols)
    sheet = Image.new("RGB", (cols * TILE, rows * (TILE + LABEL_H)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    label_font = font(14)
    for n, track in enumerate(tracks):
        view = TopDown(track, size=(TILE - 8, TILE - 8))
        s = track.start
        img = Image.fromarray(view.draw(s.x, s.y, s.yaw, goal=track.goal))
        r, c = divmod(n, cols)
        x0, y0 = c * TILE, r * (TILE + LABEL_H)
        sheet.paste(img, (x0 + (TILE - img.width) // 2, y0 + (TILE - img.height) // 2))
        for i, line in enumerate(tile_label(track)):
            draw.text((x0 + 8, y0 + TILE + 2 + 17 * i), line, fill=TEXT, font=label_font)
        draw.rectangle([x0, y0, x0 + TILE - 1, y0 + TILE + LABEL_H - 1], outline=(60, 66, 76))
    return sheet


def _check_out(out: Path, suffix: str, ours) -> None:
    """--out: a `suffix` file in a folder (created if missing); an existing file only if `ours(path)` says this
    command wrote it (never replace a shipped track, a dataset file or a checkpoint)."""
    if out.suffix.lower() != suffix:
        raise _UsageError(f"--out {out}: expected a {suffix} file name")
    if out.is_dir():
        raise _UsageError(f"cannot write {out}: it is a folder")
    why = unwritable(out.parent)
    if why:
        raise _UsageError(f"cannot write {out}: {why}")
    if out.exists() and not ours(out):
        raise _UsageError(f"--out {out} exists and is not {'a generated track' if suffix == '.json' else 'a PNG'}; "
                          f"choose another file name (this command only replaces its own output)")


def _generated_track_file(path: Path) -> bool:
    import json
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and isinstance(data.get("generator"), dict)


def _png_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    from ..files import atomic_path, write_json
    from ..progress import track as progress

    ap = build_parser()
    try:
        args = ap.parse_args(argv)
        overrides = _overrides(args)
        if args.gallery is not None:
            if not 1 <= args.gallery <= 400:
                raise _UsageError(f"--gallery N must be 1..400, got {args.gallery}")
            if args.first_seed < 0:
                raise _UsageError(f"--first-seed must be >= 0, got {args.first_seed}")
            if args.cols is not None and args.cols < 1:
                raise _UsageError(f"--cols must be >= 1, got {args.cols}")
            _check_out(args.out, ".png", _png_file)
            make_config(None, args.difficulty, **overrides)   # bad generator flags fail before any work
            seeds = range(args.first_seed, args.first_seed + args.gallery)
            tracks = [generate(s, difficulty=args.difficulty, **overrides)
                      for s in progress(seeds, desc="tracks", unit="track", quiet=args.quiet)]
            img = gallery_image(tracks, args.cols)
            with atomic_path(args.out) as tmp:
                img.save(tmp, format="PNG")
            print(f"{len(tracks)} tracks (seeds {args.first_seed}..{args.first_seed + len(tracks) - 1})")
        else:
            if args.cols is not None or args.first_seed:
                raise _UsageError("--cols and --first-seed go with --gallery")
            _check_out(args.out, ".json", _generated_track_file)
            track = generate(args.seed, difficulty=args.difficulty, **overrides)
            write_json(args.out, track.to_dict())
            k = track_kind(track)
            print(f"{track.name}: {k['corners']} corners, turns {' '.join(f'{a:+.0f}' for a in k['turns_deg'])} deg, "
                  f"free width {k['free_width']:.2f} m, track_id {track.track_id}")
    except (_UsageError, TrackError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            raise
        print(f"{PROG}: error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.entry(main, PROG))
