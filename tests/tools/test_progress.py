"""tools/progress.py: a bar redrawn in place on a terminal, plain lines
otherwise, and silence for a run too short to need either."""

from __future__ import annotations

import io

from tools.progress import Progress


def test_progress_terminal_redraws_one_line_with_bar_and_total():
    out = io.StringIO()
    bar = Progress("replay x", total=200, stream=out, tty=True, every_s=0.0)
    bar.update(50)
    bar.update(100)
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
    assert "50/200" in text and "100/200" in text and "50.0%" in text and "#" * 15 in text


def test_progress_plain_stream_prints_whole_lines_at_most_every_interval():
    out = io.StringIO()
    lines = Progress("import y", stream=out, tty=False, every_s=3600.0)
    for done in range(0, 100_000, 1000):
        lines.update(done)
    lines.close()
    assert out.getvalue() == ""  # nothing was due: a short run stays quiet
    frequent = Progress("import y", stream=out, tty=False, every_s=0.0)
    frequent.update(1000)
    frequent.update(2000)
    frequent.close()
    shown = out.getvalue().splitlines()
    assert len(shown) == 3 and "\r" not in out.getvalue()
    assert shown[0].startswith("import y: 1,000 records") and shown[-1].startswith("import y: 2,000 records")
