import contextlib
import os
import sys
from pathlib import Path

# Headless: real pygame with the dummy video driver, pybullet in DIRECT mode.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Runs `python ARGS` with SIGINT at its default action: a test run started in the background by a non-interactive
# shell (`pytest ... &`, nohup) has SIGINT ignored, an ignored signal stays ignored across exec, and the Ctrl-C tests
# would then test a program that cannot see Ctrl-C at all.
_DEFAULT_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def python_with_ctrl_c(*args) -> list[str]:
    """argv of `python *args` whose SIGINT is at its default action (see above), whatever this process inherited."""
    return [sys.executable, "-c", _DEFAULT_SIGINT, *map(str, args)]


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
