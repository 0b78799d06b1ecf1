"""The task record: the rarely set fields kept in a shared ``TaskExtras`` until first written
(issue 14, memory per task)."""

from __future__ import annotations

import pickle

from luigid.core.model import EXTRA_DEFAULTS, NO_EXTRAS, NOTHING, PENDING, RetryPolicy, Task, TaskExtras
from luigid.scheduler import Scheduler
from tests.core.support import add

POLICY = RetryPolicy(3, 10, 60)


def new_task(task_id: str = "A()", **kwargs: object) -> Task:
    return Task(task_id, PENDING, None, retry_policy=POLICY, **kwargs)  # type: ignore[arg-type]


def test_a_new_task_shares_the_default_record_and_reads_the_defaults() -> None:
    task = new_task()
    assert task.extras is NO_EXTRAS
    assert {name: getattr(task, name) for name in EXTRA_DEFAULTS} == EXTRA_DEFAULTS
    assert task.hidden_params is NOTHING and task.failures == ()


def test_writing_a_default_keeps_the_shared_record() -> None:
    task = new_task()
    task.batch_id = None
    task.accepts_messages = False
    task.scheduler_message_responses = NOTHING
    assert task.extras is NO_EXTRAS


def test_the_first_other_value_gives_the_task_its_own_record() -> None:
    task, other = new_task("A()"), new_task("B()")
    task.tracking_url = "http://x/1"
    assert task.extras is not NO_EXTRAS and type(task.extras) is TaskExtras
    assert task.tracking_url == "http://x/1"
    # the shared record is never written: every other task still reads the defaults
    assert other.tracking_url is None and other.extras is NO_EXTRAS
    assert NO_EXTRAS.tracking_url is None  # type: ignore[attr-defined]
    task.status_message = "half"
    assert (task.tracking_url, task.status_message) == ("http://x/1", "half")


def test_arguments_other_than_the_defaults_land_in_a_record_of_its_own() -> None:
    task = new_task(tracking_url="http://x", accepts_messages=True, progress_percentage=50)
    assert (task.tracking_url, task.accepts_messages, task.progress_percentage) == ("http://x", True, 50)
    assert NO_EXTRAS.accepts_messages is False  # type: ignore[attr-defined]


def test_an_empty_dict_written_is_the_tasks_own_to_change() -> None:
    """notes.py replaces NOTHING with {} and then fills it: that {} must not be the shared one."""
    task, other = new_task("A()"), new_task("B()")
    task.scheduler_message_responses = {}
    task.scheduler_message_responses["m1"] = "yes"
    assert task.scheduler_message_responses == {"m1": "yes"}
    assert other.scheduler_message_responses == {} and NOTHING == {}


def test_failures_live_in_the_record_and_clear() -> None:
    task = new_task()
    task.add_failure()
    task.add_failure()
    assert task.num_failures() == 2 and task.first_failure_time is not None
    task.clear_failures()
    assert task.num_failures() == 0 and task.first_failure_time is None
    assert new_task("B()").failures == ()


def test_fields_name_every_field_and_not_the_record() -> None:
    assert "extras" not in Task.FIELDS
    assert set(EXTRA_DEFAULTS) <= set(Task.FIELDS)
    assert set(Task.FIELDS) == (set(Task.__slots__) - {"extras"}) | set(EXTRA_DEFAULTS)
    assert list(Task.FIELDS) == sorted(Task.FIELDS)


def test_a_pickled_task_keeps_its_fields_and_layout() -> None:
    task = new_task(tracking_url="http://x")
    task.add_failure()
    plain = new_task("B()")
    again, plain_again = pickle.loads(pickle.dumps((task, plain)))
    assert again.tracking_url == "http://x" and again.num_failures() == 1
    assert plain_again.extras is NO_EXTRAS  # all defaults: shares the record again
    # pickled field by field, not as the record
    state = task.__getstate__()
    assert set(state[1]) == set(Task.FIELDS)


def test_the_scheduler_writes_extras_only_for_the_tasks_that_have_them(sched: Scheduler) -> None:
    s = sched
    add(s, "A()")
    add(s, "B()", tracking_url="http://t/b")
    add(s, "C()", status="FAILED", expl="boom")
    tasks = {t.id: t for t in s.state.tasks()}
    assert tasks["A()"].extras is NO_EXTRAS
    assert tasks["B()"].tracking_url == "http://t/b"
    assert tasks["C()"].expl == "boom" and tasks["C()"].extras is not NO_EXTRAS
