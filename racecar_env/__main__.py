"""python -m racecar_env: print the observation and action table (every field's index, group, unit, range and
meaning) and the layout id that datasets and checkpoints are checked against."""
from __future__ import annotations

import sys

from . import cli, spec


def main(argv: list[str] | None = None) -> int:
    cli.ArgumentParser(prog="python -m racecar_env", description=__doc__.split("\n", 1)[0] + " " +
                       __doc__.split("\n", 1)[1].replace("\n", " ")).parse_args(argv)
    print(spec.describe())
    return 0


if __name__ == "__main__":
    sys.exit(cli.entry(main, "python -m racecar_env"))
