"""Progress on standard error: the pure formatting, when lines are written
(with a fake clock), plain lines from `nowcast` commands run without a
terminal, and the redrawn bar on a real pseudo-terminal."""
import datetime as dt
import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios

import pytest
from test_db_copy import make_history

from nowcast_db.progress import (
    Progress,
    bar,
    duration_text,
    percent,
    plain_line,
    rate_text,
    terminal_line,
    time_left,
)

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]


@pytest.fixture
def history(toy, monkeypatch):
    """A real SQLite history: the manager's own code recorded 40 messages (see test_db_copy)."""
    return make_history(toy, monkeypatch)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# --- formatting ----------------------------------------------------------------------

def test_bar_fills_in_proportion_and_keeps_its_width():
    assert bar(0.0, 10) == "[----------]"
    assert bar(0.3, 10) == "[###-------]"
    assert bar(1.0, 4) == "[####]"
    assert bar(1.7, 4) == "[####]" and bar(-1, 4) == "[----]"


def test_percent_is_never_100_before_the_end():
    assert percent(999_999, 1_000_000) == "99%"
    assert percent(1_000_000, 1_000_000) == "100%"
    assert percent(0, 0) == "100%"  # nothing to do is done


def test_rate_and_durations_read_as_an_operator_would_say_them():
    assert rate_text(51_200.4) == "51200/s" and rate_text(3.44) == "3.4/s" and rate_text(None) == "?/s"
    assert [duration_text(s) for s in (0, 42.4, 185, 7440, None)] == ["0s", "42s", "3m05s", "2h04m", "?"]


def test_time_left_is_the_rest_at_the_rate_so_far():
    assert time_left(300, 1000, 3.0) == 7.0
    assert time_left(0, 1000, 3.0) is None  # no rate yet
    assert time_left(300, None, 3.0) is None  # no total


def test_plain_line_has_counts_percent_and_rate():
    assert plain_line("copy", "messages", 300_000, 1_000_000, 6.0) == "copy: messages 300000/1000000 (30%), 50000/s"
    assert plain_line("copy", "messages", 10, 10, 2.0, finished=True) == "copy: messages 10/10 (100%), 5.0/s, 2.0 s"
    assert plain_line("prune", "messages", 40, None, 4.0) == "prune: messages 40, 10/s"
    assert plain_line("copy", "messages", 0, 3, 0.5, finished=True, stopped=True) == (
        "copy: messages 0/3 (0%), 0.0/s, stopped after 0.5 s")


def test_terminal_line_fits_the_terminal_and_says_what_is_left():
    line = terminal_line("copy", "messages", 250, 1000, 5.0, columns=80)
    assert line.startswith("copy: messages [#######") and line.endswith(" 25% 250/1000 50/s 15s left")
    assert len(line) <= 79
    assert len(terminal_line("copy", "checklist_mutations", 1, 3, 1.0, columns=40)) == 39
    done = terminal_line("replay", "messages", 1000, 1000, 62.0, columns=80, finished=True)
    assert "[" + "#" * 30 + "]" in done and done.endswith(" 100% 1000/1000 16/s in 1m02s")


# --- when lines are written ----------------------------------------------------------

def test_plain_lines_every_interval_and_one_at_the_end():
    stream, clock = io.StringIO(), Clock()
    progress = Progress("copy", stream=stream, terminal=False, clock=clock, interval=5.0)
    with progress.stage("messages", 100) as stage:
        for _ in range(10):
            clock.now += 1.0
            stage.advance(10)
    assert stream.getvalue().splitlines() == [
        "copy: messages 50/100 (50%), 10/s",
        "copy: messages 100/100 (100%), 10/s",
        "copy: messages 100/100 (100%), 10/s, 10.0 s",
    ]


def test_terminal_redraws_one_line_and_ends_it():
    stream, clock = io.StringIO(), Clock()
    progress = Progress("replay", stream=stream, terminal=True, clock=clock)
    with progress.stage("messages", 4) as stage:
        for _ in stage.track(["a", "b", "c", "d"]):
            clock.now += 0.125
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\x1b[K\n")
    assert text.count("\r") == 3  # redrawn at most every 0.2 s (after 2 and 4 items), then the final line
    assert "replay: messages [" in text and " 100% 4/4 " in text


def test_a_stage_that_fails_says_where_it_stopped():
    stream, clock = io.StringIO(), Clock()
    progress = Progress("copy", stream=stream, terminal=False, clock=clock)
    try:
        with progress.stage("messages", 10) as stage:
            stage.advance(3)
            clock.now += 1.5
            raise KeyError("boom")
    except KeyError:
        pass
    assert stream.getvalue() == "copy: messages 3/10 (30%), 2.0/s, stopped after 1.5 s\n"


def test_disabled_progress_writes_nothing():
    stream = io.StringIO()
    with Progress("copy", stream=stream, enabled=False, terminal=True).stage("messages", 10) as stage:
        stage.advance(10)
    assert stream.getvalue() == ""


# --- the commands --------------------------------------------------------------------

def test_prune_and_replay_write_plain_lines_without_a_terminal_and_none_with_no_progress(history):
    def run(*args):
        result = subprocess.run([*NOWCAST, *args], capture_output=True, text=True, cwd=history.directory,
                                env=history.env, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    replayed = run("replay", str(history.config_file))
    assert "replay: messages 39/39 (100%), " in replayed.stderr, replayed.stderr  # the unreadable one not replayed
    assert replayed.stdout.rstrip().endswith("0 differing")
    quiet = run("replay", str(history.config_file), "--no-progress")
    assert quiet.stderr == "" and quiet.stdout == replayed.stdout
    now = dt.datetime.now(dt.timezone.utc).isoformat()  # after every recorded message
    pruned = run("db", "prune", str(history.config_file), "--before", now, "--batch-size", "5")
    lines = pruned.stderr.splitlines()
    assert [line.split(" ")[1] for line in lines] == ["checklist_mutations", "messages", "worker_runs"], lines
    assert all(line.startswith("prune: ") and "(100%)" in line for line in lines), lines
    removed = pruned.stdout.split("  messages: ")[1].split()[0]
    assert f"prune: messages {removed}/{removed} (100%)" in pruned.stderr


def test_copy_on_a_terminal_draws_bars_and_keeps_standard_output_plain(history):
    """stderr on a pseudo-terminal 72 columns wide, stdout a pipe."""
    main_fd, terminal_fd = pty.openpty()
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 72, 0, 0))
    process = subprocess.Popen([*NOWCAST, "db", "copy", str(history.db_path), str(history.directory / "c.sqlite")],
                               stdout=subprocess.PIPE, stderr=terminal_fd, cwd=history.directory, env=history.env)
    os.close(terminal_fd)
    shown = b""
    while True:
        ready, _, _ = select.select([main_fd], [], [], 60)
        assert ready, "no output on the terminal for 60 s"
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the terminal's other end closed: the process is done with it
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 0, shown.decode(errors="replace")
    lines = [line for line in shown.decode().replace("\r\n", "\n").split("\n") if line]
    assert len(lines) == 6, lines  # one finished bar per table and one for triggered_by, each ended
    for line in lines:
        final = line.split("\r")[-1].replace("\x1b[K", "")
        assert final.startswith("copy: ") and " [" in final and "] 100% " in final and " in " in final, final
        assert len(final) <= 71
    assert stdout.decode().startswith("copied ") and "\x1b" not in stdout.decode()
