"""``batch_emails = true``: failures, disables and scheduling failures summarised per owner.

The scheduler reports events on the event loop; they only update counters here. Every
``email_interval`` minutes (checked by ``update()``, which prune calls) the counters are
swapped out in one step and the summaries are rendered and sent on the outbox thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from luigid.notify.batch_summary import Tally, body_for, subject_for
from luigid.notify.mail import OutgoingMail
from luigid.notify.mailer import Mailer
from luigid.notify.settings import BatchSettings, split_addresses

#: owner -> batching key -> tally
Pending = dict[str, dict[str, Tally]]


class BatchNotifier:
    def __init__(self, settings: BatchSettings, mailer: Mailer) -> None:
        self.settings = settings
        self.mailer = mailer
        self._default_owners = frozenset(split_addresses(mailer.settings.receiver))
        self._pending: Pending = {}
        self._schedule_next_send()

    def _schedule_next_send(self) -> None:
        self._next_send = time.time() + 60 * self.settings.email_interval

    def _key(self, task_name: str, family: str, unbatched_params: Mapping[str, Any] | None) -> str:
        mode = self.settings.batch_mode
        if mode == "all":
            return task_name
        if mode == "family":
            return family
        shown = ", ".join(f"{name}={value}" for name, value in (unbatched_params or {}).items())
        return f"{family}({shown})"

    def _tallies(
        self, task_name: str, family: str, unbatched_params: Any, owners: Iterable[str] | None
    ) -> Iterator[Tally]:
        key = self._key(task_name, family, unbatched_params)
        recipients = set(self._default_owners)
        if isinstance(owners, str):
            owners = [owners]
        for entry in owners or ():
            recipients.update(split_addresses(entry))  # "a@x, b@y" is two owners, each mailed alone
        for owner in recipients:
            yield self._pending.setdefault(owner, {}).setdefault(key, Tally())

    # -- events (scheduler, on the event loop) --------------------------------------------

    def add_failure(self, task_name: str, family: str, unbatched_params: Any, expl: Any, owners: Any) -> None:
        for tally in self._tallies(task_name, family, unbatched_params, owners):
            tally.failures += 1
            tally.remember(expl, self.settings)

    def add_disable(self, task_name: str, family: str, unbatched_params: Any, owners: Any) -> None:
        for tally in self._tallies(task_name, family, unbatched_params, owners):
            tally.disables += 1

    def add_scheduling_fail(
        self, task_name: str, family: str, unbatched_params: Any, expl: Any, owners: Any
    ) -> None:
        for tally in self._tallies(task_name, family, unbatched_params, owners):
            tally.scheduling_failures += 1
            tally.remember(expl, self.settings)

    # -- sending --------------------------------------------------------------------------

    def update(self) -> None:
        """Send the summaries if ``email_interval`` has passed since the last send."""
        if time.time() >= self._next_send:
            self.send_email()

    def send_email(self) -> None:
        """Hand everything gathered so far to the mail thread and start a new interval."""
        pending, self._pending = self._pending, {}
        self._schedule_next_send()
        if pending:
            self.mailer.submit(lambda: self._render(pending))

    def _render(self, pending: Pending) -> list[OutgoingMail]:
        html = self.mailer.settings.format == "html"
        mails = []
        for owner, tallies in pending.items():
            subject = subject_for(tallies, self.settings, owner in self._default_owners)
            if subject is None:
                continue
            mail = self.mailer.compose(subject, body_for(tallies, self.settings, html), [owner])
            if mail is not None:
                mails.append(mail)
        return mails

    def start(self) -> None:
        self.mailer.start()

    def stop(self, timeout: float = 10.0) -> bool:
        return self.mailer.stop(timeout)
