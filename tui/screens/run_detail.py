"""Run detail: everything recorded about one run, and its place in the chain."""
from __future__ import annotations

import threading
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from nowcast_tui.data import Unreadable
from nowcast_tui.deliver import deliver
from nowcast_tui.formatting import args_text, diff_markup, full_time, state_style, value_text
from nowcast_tui.output_tail import OutputTail
from nowcast_tui.screens.relaunch import open_relaunch
from nowcast_tui.value_diff import change_diff
from nowcast_tui.widgets.run_output import RunOutput
from nowcast_tui.widgets.system_status import SystemStatus

OPEN_STATES = ("pending", "running")


def _indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def describe(detail: dict, dark: bool = True) -> dict[str, str]:
    """The detail as console markup, one block per section (kept separate so
    tests and the layout can address each)."""
    run = detail["run"]
    style = state_style(run.state, dark)
    summary = [
        f"[b]run {run.id}[/b]  {escape(run.worker)}  [{style}]{escape(run.state)}[/]",
        f"module:      {escape(run.module or '—')}",
        f"args:        {escape(args_text(run.args) or '—')}",
        f"host:        {escape(run.host)}",
        f"launched by: {escape(run.launched_by)}" + (f" ({escape(run.requested_by)})" if run.requested_by else ""),
        f"command:     {escape(args_text(run.command) or '—')}",
        f"pid:         {run.pid if run.pid is not None else '—'}",
        f"exit code:   {run.exit_code if run.exit_code is not None else '—'}",
        f"launched:    {full_time(run.launched_at)}",
        f"started:     {full_time(run.started_at)}",
        f"finished:    {full_time(run.finished_at)}",
    ]
    if run.final_message_type:
        summary.append(f"ended with:  {escape(run.final_message_type)}")
    if run.reason:
        summary.append(f"reason:      {escape(run.reason)}")

    trigger = detail["trigger"]
    if trigger is None:
        chain = [f"triggered by: nothing recorded (launched by {escape(run.launched_by)})"]
    else:
        parent = f"run {trigger.run_id} (p opens it)" if trigger.run_id is not None else "no run"
        chain = [f"triggered by: message {trigger.id} ({escape(str(trigger.source))} "
                 f"{escape(str(trigger.type))}) of {parent}"]
    if detail["triggered"]:
        chain.append("triggered:    " + ", ".join(
            f"run {child.id} {escape(child.worker)} ({escape(child.state)})" for child in detail["triggered"])
            + (" (c opens it)" if len(detail["triggered"]) == 1 else " (c opens each in turn)"))
    else:
        chain.append("triggered:    no runs")

    messages = ["[b]messages[/b]"] if detail["messages"] else ["[b]messages[/b]: none recorded"]
    for message in detail["messages"]:
        line = (f"  {message.id}  {full_time(message.received_at)}  {escape(str(message.source))} "
                f"[b]{escape(str(message.type))}[/b] → {escape(str(message.reply_type))}")
        if message.error:
            line += f"  [red]{escape(message.error)}[/red]"
        messages.append(line)
        if message.payload is not None:
            messages.append(escape(_indent(value_text(message.payload))))

    mutations = ["[b]checklist changes[/b]"] if detail["mutations"] else ["[b]checklist changes[/b]: none"]
    for mutation in detail["mutations"]:
        mutations.append(f"  {escape(mutation.key)}: {mutation.operation} (message {mutation.message_id})")
        mutations.append(diff_markup(change_diff(mutation.operation, mutation.before, mutation.after), dark, "    "))

    return {"summary": "\n".join(summary), "chain": "\n".join(chain),
            "messages": "\n".join(messages), "mutations": "\n".join(mutations)}


def output_problem(run, output_path: str | None) -> str | None:
    """Why there is no output to show, in one line; None when there is a file to read."""
    if output_path:
        return None
    if run.launched_by == "external":
        return "no captured output: external run (nobody launched it through the manager)"
    return "no captured output: no output file was recorded for this run"


class RunDetailScreen(Screen):
    """The recorded facts on one tab, the run's output on the other.  Both
    are read again every second while the screen shows, the output from
    where the last read stopped, so a running run's output follows."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "relaunch", "Relaunch"),
        Binding("p", "follow_trigger", "Triggered by", show=False),
        Binding("c", "follow_triggered", "Triggered", show=False),
        Binding("d", "tab('details')", "Details"),
        Binding("o", "tab('output')", "Output"),
        Binding("slash", "search", "Search output"),
        Binding("n", "jump(1)", "Next match", show=False),
        Binding("N", "jump(-1)", "Previous match", show=False),
    ]

    def __init__(self, run_id: int):
        super().__init__()
        self.run_id = run_id
        self.detail: dict | None = None
        self.tail: OutputTail | None = None
        self._tail_lock = threading.Lock()
        self._output_done = False
        self._output_note = ""
        self._next_child = 0  # which triggered run `c` opens next

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        with TabbedContent(id="tabs", initial="details"):
            with TabPane("Details", id="details"):
                with VerticalScroll(id="detail"):
                    for section in ("summary", "chain", "messages", "mutations"):
                        yield Static("", id=section, classes="section")
            with TabPane("Output", id="output"):
                yield RunOutput(id="run-output")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#summary", Static).update(f"reading run {self.run_id}…")
        self.load()
        self.set_interval(1.0, self.load)

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        try:
            detail = self.app.history.run_detail(self.run_id)
        except Unreadable as err:
            deliver(self, self.show_problem, f"Cannot show the run: {escape(str(err))}")
            return
        deliver(self, self.show, detail)
        if detail is not None:
            self.read_output(detail)

    def read_output(self, detail: dict) -> None:
        """In the load thread: the output file, first its tail, then what is new while the run is open."""
        run = detail["run"]
        problem = output_problem(run, detail.get("output_path"))
        with self._tail_lock:
            if problem is not None:
                if self.tail is None and not self._output_done:
                    self._output_done = True
                    deliver(self, self.show_output_problem, problem)
                return
            open_run = run.state in OPEN_STATES
            if self.tail is None:
                self.tail = OutputTail(Path(detail["output_path"]))
                lines, replace = self.tail.read_tail(), True
            elif self._output_done:
                return
            else:
                lines, replace = self.tail.poll()
            if not open_run:
                lines = lines + self.tail.finish()
                self._output_done = self.tail.problem is None
            tail = self.tail
            note = tail.problem or (f"{tail.path}" + (" · following" if open_run else "")
                                    + (" · output truncated by the cap" if tail.truncated else ""))
            if tail.problem is not None:
                deliver(self, self.show_output_problem, tail.problem)
            elif lines or replace or note != self._output_note:
                deliver(self, self.show_output, lines, note, replace, tail.skipped)
            self._output_note = note

    def show_problem(self, text: str) -> None:
        self.query_one("#summary", Static).update(text)

    def show_output_problem(self, text: str) -> None:
        self.query_one(RunOutput).show_problem(text)

    def show_output(self, lines: list[str], note: str, replace: bool, skipped: bool) -> None:
        self.query_one(RunOutput).show_lines(lines, note, replace, skipped)

    def show(self, detail: dict | None) -> None:
        self.detail = detail
        if detail is None:
            self.query_one("#summary", Static).update(f"there is no run {self.run_id}")
            return
        for section, text in describe(detail, self.app.current_theme.dark).items():
            self.query_one(f"#{section}", Static).update(text)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_search(self) -> None:
        self.action_tab("output")
        self.query_one(RunOutput).open_search()

    def action_jump(self, step: int) -> None:
        self.query_one(RunOutput).jump(step)

    def action_follow_trigger(self) -> None:
        """Up the chain: the run whose message launched this one."""
        trigger = self.detail["trigger"] if self.detail else None
        if trigger is None or trigger.run_id is None:
            self.notify("this run was not launched by another run's message", severity="warning")
            return
        self.app.push_screen(RunDetailScreen(trigger.run_id))

    def action_follow_triggered(self) -> None:
        """Down the chain: the runs this run's messages launched, one after another on each press."""
        children = self.detail["triggered"] if self.detail else []
        if not children:
            self.notify("this run launched no runs", severity="warning")
            return
        child = children[self._next_child % len(children)]
        self._next_child += 1
        self.app.push_screen(RunDetailScreen(child.id))

    def action_relaunch(self) -> None:
        run = self.detail["run"] if self.detail else None
        if run is not None:
            open_relaunch(self, run)
