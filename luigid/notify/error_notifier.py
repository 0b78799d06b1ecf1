"""Immediate error emails (``batch_emails = false``): one mail per disabled task, to ``[email] receiver``."""

from __future__ import annotations

from typing import Any

from luigid.notify.mailer import Mailer


def disabled_task_email(task: Any, disable_persist: float) -> tuple[str, str]:
    """Subject and body of the mail luigi's scheduler sends when it disables ``task``."""
    policy = task.retry_policy
    subject = f"Luigi Scheduler: DISABLED {task.id} due to excessive failures"
    body = (
        f"{task.id} failed {policy.retry_count} times in the last {policy.disable_window} seconds, "
        f"so it is being disabled for {disable_persist} seconds"
    )
    return subject, body


class ErrorNotifier:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def send_error_email(self, subject: str, message: str) -> None:
        """Queue the mail for the configured receiver; returns at once, never raises for SMTP trouble."""
        mail = self.mailer.compose(subject, message, [self.mailer.settings.receiver])
        if mail is not None:
            self.mailer.submit(lambda: [mail])

    def start(self) -> None:
        self.mailer.start()

    def stop(self, timeout: float = 10.0) -> bool:
        return self.mailer.stop(timeout)
