"""Email notifications from the scheduler, sent on a background thread so SMTP never stalls it."""

from luigid.notify.batch_notifier import BatchNotifier
from luigid.notify.error_notifier import ErrorNotifier, disabled_task_email
from luigid.notify.factory import make_batch_notifier, make_notifier

__all__ = ["BatchNotifier", "ErrorNotifier", "disabled_task_email", "make_batch_notifier", "make_notifier"]
