"""What the batch notifier accumulates between sends, and how one owner's summary mail reads.

The text follows luigi's batch emails (subject wording, per-task counts, error excerpts,
grouping of tasks that failed with the same message), so people and mail filters that know
luigi's summaries read these the same way.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from luigid.notify.settings import BatchSettings


@dataclass
class Tally:
    """Events for one batching key (a task, family or family+params) since the last send."""

    failures: int = 0
    disables: int = 0
    scheduling_failures: int = 0
    #: most recent distinct explanations, oldest first, at most ``error_messages`` of them
    explanations: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def remember(self, explanation: object, settings: BatchSettings) -> None:
        if settings.error_messages <= 0:
            return
        text = _tail(str(explanation).rstrip(), settings.error_lines)
        self.explanations.pop(text, None)
        self.explanations[text] = None
        while len(self.explanations) > settings.error_messages:
            self.explanations.popitem(last=False)

    @property
    def attempts_failed(self) -> int:
        return self.failures + self.scheduling_failures


def _tail(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text`` (all of them for 0); all that a summary ever shows."""
    if lines <= 0:
        return text
    return "\n".join(text.split("\n")[-lines:])


def _counted(number: int, noun: str) -> str:
    if number == 0:
        return ""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _counts(failures: int, disables: int, scheduling_failures: int) -> str:
    parts = (
        _counted(failures, "failure"),
        _counted(disables, "disable"),
        _counted(scheduling_failures, "scheduling failure"),
    )
    return ", ".join(part for part in parts if part)


def subject_for(tallies: dict[str, Tally], settings: BatchSettings, is_default_owner: bool) -> str | None:
    counts = _counts(
        sum(t.failures for t in tallies.values()),
        sum(t.disables for t in tallies.values()),
        sum(t.scheduling_failures for t in tallies.values()),
    )
    if not counts:
        return None
    whose = "" if is_default_owner else "Your tasks have "
    return f"Luigi: {whose}{counts} in the last {settings.email_interval} minutes"


def body_for(tallies: dict[str, Tally], settings: BatchSettings, html: bool) -> str:
    excerpts = {name: _excerpt(tally, html) for name, tally in tallies.items()}
    groups: list[list[str]] = []
    if settings.group_by_error_messages:
        by_excerpt: dict[str, list[str]] = {}
        for name, excerpt in excerpts.items():
            by_excerpt.setdefault(excerpt, []).append(name)
        groups = list(by_excerpt.values())
    else:
        groups = [[name] for name in excerpts]

    def task_order(name: str) -> tuple[int, int, str]:
        tally = tallies[name]
        return -tally.attempts_failed, -tally.disables, name

    def group_order(names: list[str]) -> tuple[int, int, str]:
        return (
            -sum(tallies[n].attempts_failed for n in names),
            -sum(tallies[n].disables for n in names),
            min(names),
        )

    pieces: list[str] = []
    for names in sorted(groups, key=group_order):
        lines = [_task_line(name, tallies[name]) for name in sorted(names, key=task_order)]
        pieces.append("<li>" + "\n<br>".join(lines) if html else "- " + "\n  ".join(lines))
        pieces.append(excerpts[names[0]])
    body = "\n".join(piece for piece in pieces if piece).rstrip()
    return f"<ul>\n{body}\n</ul>" if html else body


def _task_line(name: str, tally: Tally) -> str:
    return f"{name} ({_counts(tally.failures, tally.disables, tally.scheduling_failures)})"


def _excerpt(tally: Tally, html: bool) -> str:
    if html:
        return "\n".join(f"<pre>{text}</pre>" for text in tally.explanations)
    blocks = ["\n" + "\n".join("      " + line for line in text.split("\n")) for text in tally.explanations]
    if blocks:
        blocks.append("")
    return "\n".join(blocks)
