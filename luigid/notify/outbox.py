"""A background thread that sends mail, fed through a bounded queue.

The scheduler produces mail on the event loop; SMTP can take seconds (or its whole timeout
when the server is gone). Jobs are queued without waiting and delivered here. A job is a
callable that builds its mails, so even rendering a large batch summary happens off the loop.
A full queue drops the job with a warning rather than make the caller wait.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from luigid.core.throttled_log import ThrottledWarning
from luigid.notify.mail import OutgoingMail

logger = logging.getLogger("luigid.notify")

Job = Callable[[], Sequence[OutgoingMail]]
Deliver = Callable[[Sequence[OutgoingMail]], None]

DEFAULT_QUEUE_SIZE = 100
#: each failed batch is worth a line, up to this many a minute; past that (SMTP down under a
#: stream of failures) the rest are counted into the next line
FAILURE_LINES_PER_MINUTE = 3
_STOP = object()


class Outbox:
    def __init__(
        self, deliver: Deliver, max_jobs: int = DEFAULT_QUEUE_SIZE, name: str = "luigid-mail"
    ) -> None:
        self._deliver = deliver
        self._queue: queue.Queue = queue.Queue(maxsize=max_jobs)
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._dropped = 0
        self._drop_warning = ThrottledWarning(logger)
        self._failure_warning = ThrottledWarning(logger, burst=FAILURE_LINES_PER_MINUTE)
        #: jobs handed in and not yet finished (queued or being delivered)
        self._unfinished = 0
        self.delivered_batches = 0
        self.failed_batches = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def submit(self, job: Job) -> bool:
        """Queue ``job`` without blocking; False if it was dropped (queue full or outbox stopped)."""
        if self._stopping:
            self._drop_warning.warn("email dropped: the mail sender is shutting down")
            return False
        self.start()
        with self._lock:
            self._unfinished += 1
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._unfinished -= 1
                self._dropped += 1
                dropped = self._dropped
            self._drop_warning.warn(
                "email dropped: %d batches already waiting (SMTP slow or down); %d dropped so far",
                self._queue.maxsize,
                dropped,
            )
            return False
        return True

    @property
    def pending(self) -> int:
        with self._lock:
            return self._unfinished

    @property
    def dropped(self) -> int:
        return self._dropped

    def stop(self, timeout: float = 10.0) -> bool:
        """Send what is queued, waiting at most ``timeout`` seconds; True if everything went out."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        if thread is None:
            return True
        with contextlib.suppress(queue.Full):  # if full, the thread sees ``_stopping`` once drained
            self._queue.put_nowait(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("%d email batches still unsent at shutdown", self.pending)
            return False
        return True

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=1.0)
            except queue.Empty:
                if self._stopping:
                    return
                continue
            if job is _STOP:
                return
            try:
                self._handle(job)
            finally:
                with self._lock:
                    self._unfinished -= 1

    def _handle(self, job: Job) -> None:
        try:
            mails = job()
            if not mails:
                return
            started = time.monotonic()
            self._deliver(mails)
            self.delivered_batches += 1
            logger.info(
                "sent %d email(s) to %s in %.1fs",
                len(mails),
                ", ".join(sorted({r for mail in mails for r in mail.recipients})),
                time.monotonic() - started,
            )
        except Exception as exc:  # one warning per batch, whatever went wrong
            self.failed_batches += 1
            self._failure_warning.warn(
                "could not send email: %s", " ".join(str(exc).split()) or type(exc).__name__
            )
            logger.debug("email delivery failure", exc_info=True)
