import signal

if signal.getsignal(signal.SIGINT) is signal.default_int_handler:   # a Ctrl-C while loading ends it quietly
    signal.signal(signal.SIGINT, signal.SIG_DFL)

import sys  # noqa: E402

from racecar_env.cli import entry  # noqa: E402


def _main() -> int:
    from .cli import main   # loads the viewer (and its dependencies) under entry's Ctrl-C handling
    return main()


sys.exit(entry(_main, "python -m replay"))
