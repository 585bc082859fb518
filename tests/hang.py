"""A guard against hangs (not a speed check: the bound is far above any normal run)."""

import threading

HANG_SECONDS = 60.0


def without_hanging(function, seconds: float = HANG_SECONDS):
    """``function()``'s result (or its exception), failing the test if it has not returned after ``seconds``.

    The call runs in a daemon thread, so a call that never returns fails the
    test instead of stopping the suite.
    """
    outcome = {}

    def call():
        try:
            outcome["result"] = function()
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds:.0f} s: a hang"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
