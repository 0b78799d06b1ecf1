// What an operator can do to one task, shared by the task table, the graph and the
// workers tab. Each action calls the scheduler and then asks the page to refresh.

import {rpc} from './api.js';
import {confirmDialog, notify, openDialog} from './dialog.js';
import {h, hashLink} from './dom.js';
import {decodeError, progressValue} from './format.js';
import {fragmentFor} from './state.js';

let onChanged = () => {};

/** Register the callback run after an action changed server state. */
export function setChangeListener(fn) {
  onChanged = fn;
}

async function run(label, fn) {
  try {
    const message = await fn();
    if (message) notify(message);
  } catch (err) {
    notify(`${label} failed: ${err.message}`, 'error');
  }
  onChanged();
}

export async function showError(task) {
  const {body} = openDialog('Error', [h('p', {class: 'muted'}, 'Loading…')], {wide: true});
  try {
    const reply = await rpc('fetch_error', {task_id: task.id});
    const text = decodeError(reply && reply.error);
    body.replaceChildren(
      h('p', {class: 'task-title'}, (reply && reply.displayName) || task.display_name || task.id),
      text ? h('pre', {class: 'traceback'}, text) : h('p', {class: 'muted'}, 'No error recorded for this task.'));
  } catch (err) {
    body.replaceChildren(h('p', {class: 'error-text'}, err.message));
  }
}

export async function showStatus(task) {
  const {body} = openDialog('Status', [h('p', {class: 'muted'}, 'Loading…')]);
  const fill = async () => {
    const [msg, prog] = await Promise.all([
      rpc('get_task_status_message', {task_id: task.id}),
      rpc('get_task_progress_percentage', {task_id: task.id}),
    ]);
    const pct = progressValue(prog && prog.progressPercentage);
    const refresh = h('button', {class: 'btn', type: 'button'}, 'Refresh');
    refresh.addEventListener('click', () => fill().catch((e) => notify(e.message, 'error')));
    body.replaceChildren(
      h('p', {class: 'task-title'}, task.display_name || task.id),
      h('h3', null, 'Status message'),
      msg && msg.statusMessage ? h('pre', {class: 'status-message'}, String(msg.statusMessage))
        : h('p', {class: 'muted'}, 'No status message.'),
      h('h3', null, 'Progress'),
      pct === null ? h('p', {class: 'muted'}, 'No progress reported.') : progressBar(pct),
      h('div', {class: 'dialog-actions'}, refresh));
  };
  try {
    await fill();
  } catch (err) {
    body.replaceChildren(h('p', {class: 'error-text'}, err.message));
  }
}

export function progressBar(pct) {
  return h('div', {class: 'progress', role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0,
    'aria-valuemax': 100, title: `${pct}%`},
  h('div', {class: 'progress-fill', style: {width: `${pct}%`}}),
  h('span', {class: 'progress-text'}, `${Math.round(pct)}%`));
}

const RESPONSE_POLL_MS = 1000;
const RESPONSE_WAIT_MS = 60000;

export function showMessageForm(task) {
  const input = h('textarea', {rows: 3, class: 'message-input', 'aria-label': 'Message content'});
  const send = h('button', {class: 'btn primary', type: 'button'}, 'Send');
  const result = h('div', {class: 'message-result'});
  const {dialog} = openDialog('Send message', [
    h('p', {class: 'task-title'}, task.display_name || task.id),
    input, h('div', {class: 'dialog-actions'}, send), result]);
  send.addEventListener('click', async () => {
    send.disabled = true;
    result.replaceChildren(h('p', {class: 'muted'}, 'Sending…'));
    try {
      const reply = await rpc('send_scheduler_message',
        {worker: task.worker_running, task: task.id, content: input.value});
      const messageId = reply && reply.message_id;
      if (!messageId) {
        result.replaceChildren(h('p', {class: 'error-text'}, 'The scheduler does not send messages (send_messages is off).'));
        return;
      }
      result.replaceChildren(h('p', {class: 'muted'}, 'Sent; waiting for the task to respond…'));
      const deadline = Date.now() + RESPONSE_WAIT_MS;
      while (dialog.open && Date.now() < deadline) {
        const r = await rpc('get_scheduler_message_response', {task_id: task.id, message_id: messageId});
        if (r && r.response !== null && r.response !== undefined) {
          result.replaceChildren(h('h3', null, 'Response'), h('pre', {class: 'message-response'}, String(r.response)));
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, RESPONSE_POLL_MS));
      }
      if (dialog.open) result.replaceChildren(h('p', {class: 'muted'}, 'No response yet.'));
    } catch (err) {
      result.replaceChildren(h('p', {class: 'error-text'}, err.message));
    } finally {
      send.disabled = false;
    }
  });
  input.focus();
}

export function reEnable(task) {
  return run('Re-enable', async () => {
    const reply = await rpc('re_enable_task', {task_id: task.id});
    return reply && reply.status ? `Re-enabled; now ${reply.status.toLowerCase()}` : 'Task was not re-enabled';
  });
}

export function forgive(task) {
  return run('Forgive failures', async () => {
    const reply = await rpc('forgive_failures', {task_id: task.id});
    return `Failures forgiven; now ${String(reply && reply.status).toLowerCase()}`;
  });
}

export async function markDone(task) {
  const ok = await confirmDialog('Mark as done', `Mark ${task.display_name || task.id} as done?`, 'Mark done');
  if (!ok) return;
  await run('Mark as done', async () => {
    const reply = await rpc('mark_as_done', {task_id: task.id});
    return `Now ${String(reply && reply.status).toLowerCase()}`;
  });
}

function button(label, cls, handler) {
  const b = h('button', {class: `btn small ${cls}`, type: 'button'}, label);
  b.addEventListener('click', (ev) => {
    ev.stopPropagation();
    handler();
  });
  return b;
}

/** The action buttons that apply to a task in its current status. */
export function actionButtons(task, {graphLink = true} = {}) {
  const items = [];
  const st = task.status;
  if (st === 'FAILED' || st === 'DISABLED') items.push(button('Error', 'act-error', () => showError(task)));
  if (st === 'FAILED') items.push(button('Forgive', 'act-forgive', () => forgive(task)));
  if (st === 'DISABLED' && task.re_enable_able) items.push(button('Re-enable', 'act-reenable', () => reEnable(task)));
  if (st === 'RUNNING' || st === 'BATCH_RUNNING') items.push(button('Status', 'act-status', () => showStatus(task)));
  if (st === 'RUNNING' && task.accepts_messages && task.worker_running) {
    items.push(button('Message', 'act-message', () => showMessageForm(task)));
  }
  if (st === 'RUNNING' || st === 'FAILED' || st === 'DISABLED') {
    items.push(button('Mark done', 'act-done', () => markDone(task)));
  }
  if (graphLink) {
    items.push(hashLink(fragmentFor({tab: 'graph', task: task.id}), {class: 'btn small act-graph'}, 'Graph'));
  }
  return h('div', {class: 'actions'}, items);
}
