import os
import sys
from pathlib import Path

# Headless: real pygame with the dummy video driver, pybullet in DIRECT mode.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
