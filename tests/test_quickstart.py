"""The main job end to end at a reduced size: demos -> BC -> TD3+BC -> evaluation -> MP4s, then a rerun reuses it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_quickstart(tmp_path, *extra):
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "datasets"), "SDL_VIDEODRIVER": "dummy"}
    cmd = [sys.executable, str(ROOT / "quickstart.py"), "--out", str(tmp_path / "run"), "--demos", "6",
           "--bc-steps", "1000", "--steps", "300", "--eval-episodes", "4", "--videos", "1", *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
def test_quickstart_end_to_end_and_rerun_reuses(tmp_path):
    out = run_quickstart(tmp_path)
    run = tmp_path / "run"
    assert out.strip().splitlines()[-1] == f"Results are in {run}"
    final = json.loads((run / "td3bc" / "eval.json").read_text())["final"]
    # 6 demos and 1k BC updates already drive most of the S: an agent that does not learn (wrong inputs, wrong
    # pairing of observations and actions) makes ~0 progress from the start
    assert final["episodes"] == 4 and final["mean_progress"] > 0.5, final
    assert (run / "td3bc" / "checkpoints" / "best.pt").is_file()
    videos = sorted((run / "videos").glob("*.mp4"))
    assert len(videos) == 1 and sum(1 for _ in iio.imiter(videos[0])) > 20  # decodes, and is a real episode
    assert (run / "videos" / "trajectories.png").stat().st_size > 10_000
    info = json.loads((run / "videos" / "eval_info.json").read_text())
    assert info["episodes"] == 1 and len(info["per_episode"]) == 1

    again = run_quickstart(tmp_path)
    assert "reusing dataset" in again and "reusing the finished run" in again
