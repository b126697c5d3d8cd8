"""What every command line of the project shares, so bad input reads the same everywhere:

- `ArgumentParser`: a usage error is ONE line on stderr, `PROG: error: MESSAGE`, exit code 2 (argparse's default
  prints the whole usage block first, which buries the message); a value that starts with a minus and a digit
  (`--start-jitter -1,0`) is the flag's value, so its type names the allowed range (argparse would take it for
  an unknown option and say "expected one argument");
- `entry(main)`: runs a CLI's `main()` as a program: a closed pipe (`python -m teleop info NAME | head -1`) ends it
  quietly (exit 141, as a process killed by SIGPIPE), Ctrl-C ends it with one line and exit 130, never a traceback.
  Each entry module sets SIGINT to its default action first thing, so a Ctrl-C while the program is still loading
  (torch takes seconds) ends it at once without a traceback (the shell reports 130 too); `entry` then restores
  Python's KeyboardInterrupt, which every CLI turns into its own clean ending, except while a module is still
  importing (torch loaded lazily inside main()): there the signal keeps its default action, because a
  KeyboardInterrupt raised inside torch's C++ initialisation aborts the process ("terminate called after throwing
  an instance of 'pybind11::error_already_set'", exit -6, about 1 Ctrl-C in 100 during `import torch`). SIGTERM
  (`kill`, `timeout`, a scheduler, `docker stop`) takes the same path, so a training run saves last.pt and a
  recorder its episodes; the exit code is then 143, as for a process the signal killed;
- argument types that name what they expect: `count` (an integer >= 1), `seed` (an integer >= 0), `workers`
  ("auto" or an integer >= 1).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from typing import Callable

EXIT_USAGE = 2        # bad input: a one-line message naming the flag or file
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_BROKEN_PIPE = 141
MAX_SEED = 2 ** 63 - 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2); `--help` is unchanged."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse's own pattern knows only -1 and -1.5, not -1,0 or -1e3 (none of our flags looks like that)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def count(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def seed_type(hi: int = MAX_SEED, hi_text: str = "2**63 - 1", why: str = "") -> Callable[[str], int]:
    """An argparse type: a seed, a whole number 0 .. hi written in ASCII digits (int() would also read "٣" as 3)."""
    def parse(text: str) -> int:
        try:
            n = int(text) if str(text).strip().lstrip("+").isascii() else -1
        except ValueError:
            n = -1
        if not 0 <= n <= hi:
            raise argparse.ArgumentTypeError(f"expected a seed, a whole number from 0 to {hi_text} ({hi}{why}), "
                                             f"got {text!r}")
        return n
    return parse


seed = seed_type()   # argparse type: a seed, a whole number 0 .. 2**63 - 1


def workers(text: str) -> "int | str":
    """argparse type: 'auto' (one per CPU) or a whole number >= 1."""
    if text == "auto":
        return text
    try:
        return count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 1, got {text!r}") from None


def _pipe_closed(stream) -> bool:
    """Whether `stream` is a pipe whose reader has gone (poll reports an error on it)."""
    try:
        import select
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def importing() -> bool:
    """True while some module is being imported (importlib marks its spec `_initializing` until it has run)."""
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for module in list(sys.modules.values()))


def _interrupt_unless_importing(signum, frame) -> None:
    """Ctrl-C (and SIGTERM) as KeyboardInterrupt; during an import the signal's default action ends the program,
    as while it loads, since an exception raised inside a C++ extension's initialisation aborts the process."""
    if importing():
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)   # SIGINT's and SIGTERM's default action ends the process here
    raise KeyboardInterrupt


def entry(main: Callable[[], "int | None"], prog: str | None = None) -> int:
    """Run a CLI's main() as a program and return its exit code (`sys.exit(entry(main))`)."""
    prog = prog or os.path.basename(sys.argv[0] or "python")
    terminated = []
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is signal.SIG_DFL:
            signal.signal(signal.SIGINT, _interrupt_unless_importing)   # loaded: Ctrl-C is KeyboardInterrupt again
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

            def on_term(signum, frame):
                terminated.append(signum)
                _interrupt_unless_importing(signum, frame)
            signal.signal(signal.SIGTERM, on_term)
    try:
        code = main()
        sys.stdout.flush()   # a pipe closed early fails here, inside the handler, not at interpreter exit
        code = int(code or 0)
        return EXIT_TERMINATED if terminated and code == EXIT_INTERRUPTED else code
    except BrokenPipeError:
        if not (_pipe_closed(sys.stdout) or _pipe_closed(sys.stderr)):
            raise   # some other pipe (a worker process's): a real error
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        try:
            print(f"{prog}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
