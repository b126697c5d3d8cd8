import contextlib
import os
import sys
from pathlib import Path

# Headless: real pygame with the dummy video driver, pybullet in DIRECT mode.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@contextlib.contextmanager
def autopilot_datasets(root: Path, *configs):
    """MINARI_DATASETS_PATH=root while inside, with an autopilot dataset recorded for each teleop RecordConfig."""
    from teleop.record import record_autopilot
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        for cfg in configs:
            record_autopilot(cfg)
        yield root
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old
