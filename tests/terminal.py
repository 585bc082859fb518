"""Children that get Ctrl-C as they would at a terminal.

A shell that runs the test suite as a background job (``cmd &`` in a script,
``nohup``) starts it with SIGINT ignored, and every child inherits that;
tinybnn then rightly keeps ignoring SIGINT (:mod:`tinybnn.interrupt`), and a
test that sends it one sees the command run to its end. The tests that send
SIGINT start their children with it back at its default, as in a terminal.
"""

import signal


def sigint_as_at_a_terminal() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGINT at its default action in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
