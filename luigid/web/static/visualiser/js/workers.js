// The workers tab: every active worker with its counts and running tasks; an operator
// can disable a worker or ask it to change its number of processes.

import {actionButtons, progressBar} from './actions.js';
import {rpc, taskArray} from './api.js';
import {confirmDialog, notify} from './dialog.js';
import {h} from './dom.js';
import {formatNumber, formatTime, formatTimeParts, progressValue} from './format.js';

let onChanged = () => {};
export function setWorkersChangeListener(fn) {
  onChanged = fn;
}

function field(label, value, cls) {
  return h('div', {class: `field ${cls || ''}`}, h('dt', null, label), h('dd', null, value ?? ''));
}

export class WorkersView {
  constructor(root) {
    this.root = root;
    this.gen = 0;
    this.summary = h('p', {class: 'summary', id: 'worker-summary'});
    this.list = h('div', {class: 'worker-list', id: 'worker-list'});
    root.append(this.summary, this.list);
  }

  /** Fetch what `state` asks for; resolve to a function that draws it, or null when a newer load has begun. */
  async load() {
    const gen = ++this.gen;
    const workers = await rpc('worker_list', {});
    if (gen !== this.gen) return null;
    return () => this.render(Array.isArray(workers) ? workers : []);
  }

  render(list) {
    this.summary.textContent = `${formatNumber(list.length)} active worker${list.length === 1 ? '' : 's'}`;
    // Keep any half-typed process count across refreshes.
    const typed = new Map([...this.list.querySelectorAll('input.processes')]
      .filter((i) => i === document.activeElement || i.dataset.dirty === '1')
      .map((i) => [i.dataset.worker, {value: i.value, focused: i === document.activeElement}]));
    const cards = list.map((w) => this.card(w, typed.get(String(w.name))));
    this.list.replaceChildren(...(cards.length ? cards : [h('p', {class: 'muted'}, 'No active workers.')]));
    for (const input of this.list.querySelectorAll('input.processes')) {
      if (typed.get(input.dataset.worker)?.focused) input.focus();
    }
  }

  card(w, typed) {
    const name = String(w.name);
    const disabled = w.state === 'disabled';
    const processes = h('input', {type: 'number', min: 1, step: 1, class: 'processes',
      'aria-label': 'Number of processes', value: typed ? typed.value : (w.workers ?? '')});
    processes.dataset.worker = name;
    if (typed) processes.dataset.dirty = '1';
    processes.addEventListener('input', () => { processes.dataset.dirty = '1'; });
    const setButton = h('button', {type: 'button', class: 'btn small act-processes'}, 'Set processes');
    setButton.addEventListener('click', async () => {
      const n = parseInt(processes.value, 10);
      if (!Number.isInteger(n) || n < 1) {
        notify('Number of processes must be a whole number of at least 1', 'error');
        return;
      }
      try {
        await rpc('set_worker_processes', {worker: name, n});
        processes.dataset.dirty = '';
        notify(`Asked ${w.host || name} to run ${n} processes`);
      } catch (err) {
        notify(err.message, 'error');
      }
      onChanged();
    });
    const disableButton = h('button', {type: 'button', class: 'btn small danger act-disable-worker', disabled},
      disabled ? 'Disabled' : 'Disable');
    disableButton.addEventListener('click', async () => {
      const ok = await confirmDialog('Disable worker',
        `Disable worker ${w.host || ''} (pid ${w.pid ?? '?'})? It will get no more work from the scheduler.`, 'Disable');
      if (!ok) return;
      try {
        await rpc('disable_worker', {worker: name});
        notify('Worker disabled');
      } catch (err) {
        notify(err.message, 'error');
      }
      onChanged();
    });

    const running = taskArray(w.running);
    const card = h('article', {class: `worker-card state-${disabled ? 'disabled' : 'active'}`},
      h('header', null,
        h('h2', null, w.host || name),
        h('span', {class: `badge ${disabled ? 'status-disabled' : 'status-running'}`}, String(w.state ?? '')),
        h('span', {class: 'worker-id muted', title: name}, name)),
      h('dl', {class: 'fields'},
        field('Host', w.host),
        field('PID', w.pid),
        field('User', w.username),
        field('Started', formatTime(w.started)),
        field('Last active', formatTime(w.last_active)),
        field('Processes', w.workers),
        field('Running', formatNumber(w.num_running ?? 0), 'num-running'),
        field('Pending', formatNumber(w.num_pending ?? 0), 'num-pending'),
        field('Unique pending', formatNumber(w.num_uniques ?? 0), 'num-uniques'),
        field('Pending RPC messages', formatNumber(w.num_unread_rpc_messages ?? 0), 'num-rpc'),
        w.first_task_display_name ? field('First task', w.first_task_display_name) : null),
      h('div', {class: 'worker-actions'}, processes, setButton, disableButton),
      running.length ? this.runningTable(running) : h('p', {class: 'muted'}, 'No running tasks.'));
    card.dataset.worker = name;
    return card;
  }

  runningTable(tasks) {
    return h('div', {class: 'table-scroll'}, h('table', {class: 'running-table'},
      h('thead', null, h('tr', null, ['Task', 'Started', 'Status message', 'Progress', 'Actions'].map((c) => h('th', null, c)))),
      h('tbody', null, tasks.map((t) => {
        const pct = progressValue(t.progress_percentage);
        const tr = h('tr', null,
          h('td', {class: 'cell-name'}, t.display_name || t.id),
          h('td', {class: 'cell-time'}, formatTimeParts(t.time_running || t.start_time).map((p) => h('span', null, p))),
          h('td', {class: 'cell-message'}, t.status_message || ''),
          h('td', {class: 'cell-progress'}, pct === null ? '' : progressBar(pct)),
          h('td', {class: 'cell-actions'}, actionButtons(t)));
        tr.dataset.taskId = t.id;
        return tr;
      }))));
  }
}
