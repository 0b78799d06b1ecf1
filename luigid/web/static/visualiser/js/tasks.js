// The task list tab: per-status counts that act as filters, a family sidebar, a search and
// a paged, sorted table. All of it comes from luigid's own endpoint, ui/tasks, which counts,
// filters, sorts and pages on the server (luigi's API is left as luigi has it), so the page
// never loads more than one page of tasks, whatever the scheduler holds.

import {actionButtons, progressBar} from './actions.js';
import {browseTasks} from './api.js';
import {externalLink, h} from './dom.js';
import {
  formatNumber, formatResources, formatTime, formatTimeParts, heldResources, progressValue, statusClass, statusLabel,
} from './format.js';
import {normaliseStatuses, STATUS_BOXES, statusSet, updateState} from './state.js';

/** Most rows one page shows (the server's limit). */
export const TABLE_CAP = 1000;
/** Rows per page of the table, unless the link asks for another size (`length`, as luigi's does). */
export const PAGE_SIZE = 100;
const PAGE_SIZES = [10, 25, 50, 100];

const UPSTREAM_BOXES = ['UPSTREAM_FAILED', 'UPSTREAM_DISABLED'];

const COLUMNS = [
  {key: 'name', label: 'Task', sortable: true},
  {key: 'status', label: 'Status', sortable: true},
  {key: 'started', label: 'Started', sortable: true},
  {key: 'updated', label: 'Updated', sortable: true},
  {key: 'priority', label: 'Priority', sortable: true},
  {key: 'resources', label: 'Resources'},
  {key: 'progress', label: 'Progress', sortable: true},
  {key: 'message', label: 'Status message'},
  {key: 'tracking', label: 'Tracking'},
  {key: 'actions', label: 'Actions'},
];
const SORTABLE = new Set(COLUMNS.filter((c) => c.sortable).map((c) => c.key));

/** Rows per page for a state: its `length` when usable (-1: the most a page shows), else PAGE_SIZE. */
function pageSize(state) {
  const n = parseInt(state.length, 10);
  if (n === -1) return TABLE_CAP;
  return n >= 1 ? Math.min(n, TABLE_CAP) : PAGE_SIZE;
}

/** The state's sort as the server names it: a column, '-' first for descending. */
function sortOf(state) {
  const key = state.sort.replace(/^-/, '');
  return SORTABLE.has(key) ? state.sort : '-updated';
}

/** One page of the view `state` asks for, with every count: see luigid/web/taskbrowser.py. */
async function fetchPage(state) {
  const size = pageSize(state);
  const page = Math.max(1, parseInt(state.page, 10) || 1);
  const query = {
    status: statusSet(state).join(','),
    search: state.search.trim(),
    sort: sortOf(state),
    offset: String((page - 1) * size),
    limit: String(size),
  };
  if (state.family) query.family = state.family;
  let reply = await browseTasks(query);
  // The scheduler's max_shown_tasks may make pages shorter than asked: page by its size.
  const rows = Math.min(size, reply.limit);
  let last = Math.max(1, Math.ceil(reply.total / rows));
  if (rows < size || (page > last && reply.total > 0)) {
    // ... and a page past the end (the list shrank, or an old link) shows the last one.
    reply = await browseTasks({...query, offset: String((Math.min(page, last) - 1) * rows)});
    last = Math.max(1, Math.ceil(reply.total / rows));
  }
  const tasks = reply.tasks.map((entry, i) => {
    const [id, task] = Object.entries(entry)[0];
    return {...task, id, box: reply.boxes[i]};
  });
  return {...reply, tasks, size: rows, capped: rows < size};
}

export class TasksView {
  constructor(root) {
    this.root = root;
    this.gen = 0;
    this.lastSearchPush = 0;
    this.searchTimer = null;

    this.countsBar = h('div', {class: 'counts', role: 'group', 'aria-label': 'Filter by status'});
    this.countButtons = new Map();
    const all = this.countButton('', 'All tasks');
    this.countsBar.appendChild(all);
    for (const key of STATUS_BOXES) this.countsBar.appendChild(this.countButton(key, statusLabel(key)));

    this.search = h('input', {type: 'search', id: 'task-search', placeholder: 'Search tasks (name and parameters)',
      'aria-label': 'Search tasks', autocomplete: 'off'});
    this.search.addEventListener('input', () => this.onSearchInput());
    this.summary = h('span', {class: 'summary', id: 'task-summary'});
    this.pageSize = h('select', {id: 'page-size', 'aria-label': 'Rows per page'});
    this.pageSize.addEventListener('change', () => {
      const n = this.pageSize.value;
      updateState({length: n === String(PAGE_SIZE) ? '' : n, page: '1'});
    });
    this.notice = h('div', {class: 'view-notice', id: 'task-notice'});
    this.familyList = h('ul', {class: 'family-list', id: 'family-list'});
    this.thead = h('thead');
    this.tbody = h('tbody');
    this.table = h('table', {class: 'task-table', id: 'task-table'}, this.thead, this.tbody);
    this.pager = h('nav', {class: 'pager', 'aria-label': 'Pages'});

    root.append(
      this.countsBar,
      h('div', {class: 'tasks-layout'},
        h('aside', {class: 'families'}, h('h2', null, 'Families'), this.familyList),
        h('div', {class: 'tasks-main'},
          h('div', {class: 'toolbar'}, this.search, this.summary,
            h('label', {class: 'page-size'}, 'Rows ', this.pageSize)),
          this.notice,
          h('div', {class: 'table-wrap'}, this.table),
          this.pager)));
  }

  countButton(key, label) {
    const button = h('button', {type: 'button', class: `count-box status-${key ? statusClass(key) : 'all'}`,
      dataset: {status: key}, 'aria-pressed': 'false'},
    h('span', {class: 'count-number'}, '…'), h('span', {class: 'count-label'}, label));
    // As on luigi's page each box switches on and off by itself, so several can be on;
    // "All tasks" switches every box off.
    button.addEventListener('click', () => {
      const on = this.state ? statusSet(this.state) : [];
      const next = !key ? [] : on.includes(key) ? on.filter((k) => k !== key) : [...on, key];
      updateState({status: normaliseStatuses(next), page: '1'});
    });
    this.countButtons.set(key, button);
    return button;
  }

  onSearchInput() {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      // The first change of a burst of typing makes a history entry; later ones amend it.
      const replace = Date.now() - this.lastSearchPush < 2000;
      this.lastSearchPush = Date.now();
      updateState({search: this.search.value, page: '1'}, {replace});
    }, 300);
  }

  /** Fetch what `state` asks for; resolve to a function that draws it, or null when a newer load has begun. */
  async load(state) {
    const gen = ++this.gen;
    this.state = state;
    if (document.activeElement !== this.search && this.search.value !== state.search) {
      this.search.value = state.search;
    }
    const boxes = statusSet(state);
    for (const [key, button] of this.countButtons) {
      button.setAttribute('aria-pressed', String(key ? boxes.includes(key) : !boxes.length));
    }
    this.showPageSize(state);

    const reply = await fetchPage(state);
    if (gen !== this.gen) return null;
    return () => {
      this.renderCounts(reply);
      this.renderFamilies(state, reply.families);
      this.renderTable(state, reply);
      this.notice.replaceChildren(...(reply.capped ? [h('p', {class: 'warn'},
        `The scheduler's max_shown_tasks (${formatNumber(reply.limit)}) limits each page to that many tasks.`)] : []));
    };
  }

  /** The page-size menu: luigi's sizes and ours, plus whatever size the link asked for. */
  showPageSize(state) {
    const size = pageSize(state);
    const sizes = new Set([...PAGE_SIZES, size]);
    const options = [...sizes].sort((a, b) => a - b).map((n) =>
      h('option', {value: n === TABLE_CAP ? '-1' : String(n)}, formatNumber(n)));
    if (!sizes.has(TABLE_CAP)) options.push(h('option', {value: '-1'}, formatNumber(TABLE_CAP)));
    this.pageSize.replaceChildren(...options);
    this.pageSize.value = size === TABLE_CAP ? '-1' : String(size);
  }

  renderCounts({counts, upstream_backlog: backlog}) {
    for (const [key, button] of this.countButtons) {
      const number = button.querySelector('.count-number');
      const value = counts[key] ?? 0;
      const settling = backlog > 0 && (UPSTREAM_BOXES.includes(key) || key === 'PENDING');
      number.textContent = formatNumber(value);
      button.classList.toggle('settling', settling);
      number.title = settling
        ? `Still being worked out: the scheduler has ${formatNumber(backlog)} tasks to look at after a failure or a recovery upstream`
        : '';
    }
  }

  renderFamilies(state, counted) {
    const items = [];
    const families = new Map(Object.entries(counted || {}));
    const select = (name) => updateState({family: state.family === name ? '' : name, page: '1'});
    if (state.family) {
      const clear = h('button', {type: 'button', class: 'family clear-family'}, 'Show all families');
      clear.addEventListener('click', () => updateState({family: '', page: '1'}));
      items.push(h('li', null, clear));
    }
    if (state.family && !families.has(state.family)) families.set(state.family, null);
    for (const name of [...families.keys()].sort((a, b) => a.localeCompare(b))) {
      const n = families.get(name);
      const b = h('button', {type: 'button', class: 'family', dataset: {family: name},
        'aria-pressed': String(name === state.family)},
      h('span', {class: 'family-name'}, name || '(no family yet)'),
      n === null ? null : h('span', {class: 'family-count'}, formatNumber(n)));
      b.addEventListener('click', () => select(name));
      items.push(h('li', null, b));
    }
    if (!items.length) items.push(h('li', {class: 'muted'}, 'No tasks.'));
    this.familyList.replaceChildren(...items);
  }

  renderTable(state, {tasks, total, offset, size}) {
    const sort = sortOf(state);
    const desc = sort.startsWith('-');
    const sortKey = sort.replace(/^-/, '');
    const pages = Math.max(1, Math.ceil(total / size));
    const page = Math.min(pages, Math.floor(offset / size) + 1);
    const rows = tasks;

    this.thead.replaceChildren(h('tr', null, COLUMNS.map((col) => {
      if (!col.sortable) return h('th', {scope: 'col'}, col.label);
      const active = col.key === sortKey;
      const b = h('button', {type: 'button', class: 'sort', dataset: {sort: col.key}},
        col.label, active ? (desc ? ' ▼' : ' ▲') : '');
      b.addEventListener('click', () => updateState({sort: active && !desc ? `-${col.key}` : col.key}));
      return h('th', {scope: 'col', 'aria-sort': active ? (desc ? 'descending' : 'ascending') : 'none'}, b);
    })));

    this.tbody.replaceChildren(...rows.map((t) => this.row(t)));
    if (!rows.length) {
      this.tbody.append(h('tr', {class: 'empty'}, h('td', {colspan: COLUMNS.length}, 'No tasks to show.')));
    }

    const first = rows.length ? offset + 1 : 0;
    this.summary.textContent = `${formatNumber(first)}–${formatNumber(offset + rows.length)} of ${formatNumber(total)} tasks`;
    this.renderPager(page, pages);
  }

  row(t) {
    const params = t.params && typeof t.params === 'object' ? Object.entries(t.params) : [];
    const pct = progressValue(t.progress_percentage);
    // The box that counts the task: upstream failed/disabled rather than plain pending.
    const shownStatus = t.box || t.status;
    const tr = h('tr', {class: `task-row status-${statusClass(shownStatus)}`},
      h('td', {class: 'cell-name', title: t.display_name || t.id},
        h('div', {class: 'task-family'}, t.name || t.id),
        params.length ? h('div', {class: 'params'}, params.map(([k, v], i) => [
          i ? ', ' : '', h('span', {class: 'param-name'}, k), '=', h('span', {class: 'param-value'}, String(v))]))
          : null),
      h('td', {class: 'cell-status'}, h('span', {class: `badge status-${statusClass(shownStatus)}`}, statusLabel(shownStatus))),
      h('td', {class: 'cell-time', title: formatTime(t.time_running || t.start_time)},
        formatTimeParts(t.time_running || t.start_time).map((part) => h('span', null, part))),
      h('td', {class: 'cell-time', title: formatTime(t.last_updated)},
        formatTimeParts(t.last_updated).map((part) => h('span', null, part))),
      h('td', {class: 'cell-num'}, t.priority ?? ''),
      h('td', {class: 'cell-resources'}, formatResources(heldResources(t))),
      h('td', {class: 'cell-progress'}, pct === null ? '' : progressBar(pct)),
      h('td', {class: 'cell-message', title: t.status_message || ''}, h('div', {class: 'clamp'}, t.status_message || '')),
      h('td', {class: 'cell-tracking'}, t.tracking_url ? externalLink(t.tracking_url, 'Open') : ''),
      h('td', {class: 'cell-actions'}, actionButtons(t)));
    tr.dataset.taskId = t.id;
    return tr;
  }

  renderPager(page, pages) {
    if (pages <= 1) {
      this.pager.replaceChildren();
      return;
    }
    const go = (p) => updateState({page: String(p)});
    const prev = h('button', {type: 'button', class: 'btn small', disabled: page <= 1}, '‹ Previous');
    const next = h('button', {type: 'button', class: 'btn small', disabled: page >= pages}, 'Next ›');
    prev.addEventListener('click', () => go(page - 1));
    next.addEventListener('click', () => go(page + 1));
    this.pager.replaceChildren(prev, h('span', {class: 'page-info'}, `Page ${page} of ${pages}`), next);
  }
}
