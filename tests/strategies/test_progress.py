"""report_progress: a strategy tells whoever runs the training how far a long step is."""

from __future__ import annotations

from personalize.strategies import report_progress
from personalize.strategies.progress import reporting


def test_reports_reach_the_callback_of_the_block_only():
    seen: list[tuple[str, int, int]] = []
    report_progress("nobody listens", 1, 2)  # no callback: nothing happens
    with reporting(lambda *args: seen.append(args)):
        report_progress("encoding", 5, 10)
        with reporting(None):
            report_progress("hidden", 1, 1)
        report_progress("encoding", 10, 10)
    report_progress("after", 1, 1)
    assert seen == [("encoding", 5, 10), ("encoding", 10, 10)]


def test_a_failing_display_never_fails_the_training():
    def broken(step: str, done: int, total: int) -> None:
        raise OSError("the terminal went away")

    with reporting(broken):
        report_progress("encoding", 1, 2)
