"""Run detail: everything recorded about one run, and its place in the chain."""
from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from nowcast_tui.data import Unreadable
from nowcast_tui.formatting import STATE_STYLES, args_text, full_time, value_text
from nowcast_tui.screens.relaunch import RelaunchModal
from nowcast_tui.widgets.system_status import SystemStatus


def _indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def describe(detail: dict) -> dict[str, str]:
    """The detail as console markup, one block per section (kept separate so
    tests and the layout can address each)."""
    run = detail["run"]
    style = STATE_STYLES.get(run.state, "")
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
        parent = f"run {trigger.run_id}" if trigger.run_id is not None else "no run"
        chain = [f"triggered by: message {trigger.id} ({escape(str(trigger.source))} "
                 f"{escape(str(trigger.type))}) of {parent}"]
    if detail["triggered"]:
        chain.append("triggered:    " + ", ".join(
            f"run {child.id} {escape(child.worker)} ({escape(child.state)})" for child in detail["triggered"]))
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
        if mutation.operation != "set":
            mutations.append("    before:\n" + escape(_indent(value_text(mutation.before), "      ")))
        if mutation.operation != "clear":
            mutations.append("    after:\n" + escape(_indent(value_text(mutation.after), "      ")))

    return {"summary": "\n".join(summary), "chain": "\n".join(chain),
            "messages": "\n".join(messages), "mutations": "\n".join(mutations)}


class RunDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "relaunch", "Relaunch"),
    ]

    def __init__(self, run_id: int):
        super().__init__()
        self.run_id = run_id
        self.detail: dict | None = None

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        with VerticalScroll(id="detail"):
            for section in ("summary", "chain", "messages", "mutations"):
                yield Static("", id=section, classes="section")
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
            self.app.call_from_thread(self.query_one("#summary", Static).update, f"Cannot show the run: {err}")
            return
        self.app.call_from_thread(self.show, detail)

    def show(self, detail: dict | None) -> None:
        self.detail = detail
        if detail is None:
            self.query_one("#summary", Static).update(f"there is no run {self.run_id}")
            return
        for section, text in describe(detail).items():
            self.query_one(f"#{section}", Static).update(text)

    def action_relaunch(self) -> None:
        run = self.detail["run"] if self.detail else None
        if run is None or not run.module:
            self.notify("this run has no module to relaunch", severity="warning")
            return
        self.app.push_screen(RelaunchModal(run.module, list(run.args or []), run.host))
