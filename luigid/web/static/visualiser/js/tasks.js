// The task list tab: per-status counts that act as filters, a family sidebar, a
// server-side search and a paged table. Counts come from the server (task_list answers
// with {"num_tasks": N} past max_shown_tasks), so the browser never pulls every task.

import {actionButtons, progressBar} from './actions.js';
import {isCountReply, rpc, taskArray} from './api.js';
import {externalLink, h} from './dom.js';
import {
  formatNumber, formatResources, formatTime, formatTimeParts, heldResources, progressValue, statusClass, statusLabel,
} from './format.js';
import {updateState} from './state.js';

/** Most tasks the page asks the server for in one list. */
export const TABLE_CAP = 1000;
/** Rows rendered per page of the table. */
export const PAGE_SIZE = 100;

const FILTERS = [
  {key: 'PENDING', status: 'PENDING', upstream: ''},
  {key: 'RUNNING', status: 'RUNNING', upstream: ''},
  {key: 'BATCH_RUNNING', status: 'BATCH_RUNNING', upstream: ''},
  {key: 'DONE', status: 'DONE', upstream: ''},
  {key: 'FAILED', status: 'FAILED', upstream: ''},
  {key: 'UPSTREAM_FAILED', status: 'PENDING', upstream: 'UPSTREAM_FAILED'},
  {key: 'DISABLED', status: 'DISABLED', upstream: ''},
  {key: 'UPSTREAM_DISABLED', status: 'PENDING', upstream: 'UPSTREAM_DISABLED'},
];

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

const SORT_KEYS = {
  name: (t) => String(t.display_name || t.id).toLowerCase(),
  status: (t) => String(t.status),
  started: (t) => (typeof t.start_time === 'number' ? t.start_time : 0),
  updated: (t) => (typeof t.last_updated === 'number' ? t.last_updated : 0),
  priority: (t) => (typeof t.priority === 'number' ? t.priority : 0),
  progress: (t) => progressValue(t.progress_percentage) ?? -1,
};

function filterFor(key) {
  return FILTERS.find((f) => f.key === key) || null;
}

function searchArgs(search) {
  return search && search.trim() ? {search: search.trim()} : {};
}

/** A status count: a number, or null when the server cannot tell cheaply. */
async function countFor(filter, search) {
  const reply = await rpc('task_list', {
    status: filter.status,
    upstream_status: filter.upstream,
    // Upstream status needs the pending tasks themselves; for plain statuses a limit
    // of one makes the server answer with just the count.
    max_shown_tasks: filter.upstream ? TABLE_CAP : 1,
    ...searchArgs(search),
  });
  if (isCountReply(reply)) return reply.num_tasks < 0 ? null : reply.num_tasks;
  return Object.keys(reply || {}).length;
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
    for (const f of FILTERS) this.countsBar.appendChild(this.countButton(f.key, statusLabel(f.key)));

    this.search = h('input', {type: 'search', id: 'task-search', placeholder: 'Search tasks (name and parameters)',
      'aria-label': 'Search tasks', autocomplete: 'off'});
    this.search.addEventListener('input', () => this.onSearchInput());
    this.summary = h('span', {class: 'summary', id: 'task-summary'});
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
          h('div', {class: 'toolbar'}, this.search, this.summary),
          this.notice,
          h('div', {class: 'table-wrap'}, this.table),
          this.pager)));
  }

  countButton(key, label) {
    const button = h('button', {type: 'button', class: `count-box status-${key ? statusClass(key) : 'all'}`,
      dataset: {status: key}, 'aria-pressed': 'false'},
    h('span', {class: 'count-number'}, '…'), h('span', {class: 'count-label'}, label));
    button.addEventListener('click', () => {
      const current = this.state ? this.state.status : '';
      updateState({status: current === key ? '' : key, page: '1'});
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
    for (const [key, button] of this.countButtons) {
      button.setAttribute('aria-pressed', String(key === state.status));
    }

    const filters = [{key: '', status: '', upstream: ''}, ...FILTERS];
    const counts = await Promise.all(filters.map((f) => countFor(f, state.search)));
    if (gen !== this.gen) return null;
    const index = filters.findIndex((f) => f.key === state.status);
    const listing = await this.fetchListing(state, counts[index < 0 ? 0 : index]);
    if (gen !== this.gen) return null;
    return () => {
      this.renderCounts(counts);
      this.renderListing(state, listing);
    };
  }

  /**
   * The tasks of the current status filter and search, or just their number when there
   * are too many. `known` is the count already fetched for this filter (null: unknown).
   * Within TABLE_CAP the request carries no limit of its own, so the scheduler's
   * configured max_shown_tasks still applies.
   */
  async fetchListing(state, known) {
    const filter = filterFor(state.status) || {status: '', upstream: ''};
    const args = {status: filter.status, upstream_status: filter.upstream};
    let reply;
    let narrowedByFamily = false;
    if (known !== null && known <= TABLE_CAP) {
      reply = known === 0 ? {} : await rpc('task_list', {...args, ...searchArgs(state.search)});
    } else {
      reply = {num_tasks: known === null ? -1 : known};
    }
    if (isCountReply(reply) && state.family) {
      // Too many for the page: let the server narrow to the family too. Display names
      // start with 'Family(' so that is a search term the server can match.
      reply = await rpc('task_list', {...args, max_shown_tasks: TABLE_CAP,
        search: `${state.search} ${state.family}(`.trim()});
      narrowedByFamily = true;
    }
    if (isCountReply(reply)) return {over: true, count: reply.num_tasks, tasks: [], narrowedByFamily};
    return {over: false, count: null, tasks: taskArray(reply), narrowedByFamily};
  }

  renderCounts(counts) {
    const keys = ['', ...FILTERS.map((f) => f.key)];
    keys.forEach((key, i) => {
      const number = this.countButtons.get(key).querySelector('.count-number');
      const value = counts[i];
      number.textContent = value === null ? '?' : formatNumber(value);
      number.title = value === null ? `More than ${formatNumber(TABLE_CAP)} pending tasks: search to narrow` : '';
    });
  }

  renderListing(state, listing) {
    const {over, count, tasks, narrowedByFamily} = listing;
    this.notice.replaceChildren();
    if (over) {
      this.notice.append(count < 0
        ? h('p', {class: 'warn'}, `Too many pending tasks to work out their upstream status here (more than ${formatNumber(TABLE_CAP)}). Search to narrow the list.`)
        : h('p', {class: 'warn'},
          h('strong', {class: 'over-count'}, formatNumber(count)),
          ` tasks match, more than the ${formatNumber(TABLE_CAP)} this page loads at once. Choose a status or search to narrow the list.`));
    }

    const families = new Map();
    if (!narrowedByFamily) {
      for (const t of tasks) {
        const name = String(t.name || '');
        families.set(name, (families.get(name) || 0) + 1);
      }
    }
    this.renderFamilies(state, families, over && !narrowedByFamily);

    const shown = state.family ? tasks.filter((t) => String(t.name) === state.family) : tasks;
    this.renderTable(state, shown);
  }

  renderFamilies(state, families, unknown) {
    const items = [];
    const select = (name) => updateState({family: state.family === name ? '' : name, page: '1'});
    if (state.family) {
      const clear = h('button', {type: 'button', class: 'family clear-family'}, 'Show all families');
      clear.addEventListener('click', () => updateState({family: '', page: '1'}));
      items.push(h('li', null, clear));
    }
    if (unknown) {
      items.push(h('li', {class: 'muted'}, 'Too many tasks to group by family. Narrow the list first.'));
    }
    if (state.family && !families.has(state.family)) families.set(state.family, null);
    for (const name of [...families.keys()].sort((a, b) => a.localeCompare(b))) {
      const n = families.get(name);
      const b = h('button', {type: 'button', class: 'family', dataset: {family: name},
        'aria-pressed': String(name === state.family)},
      h('span', {class: 'family-name'}, name),
      n === null ? null : h('span', {class: 'family-count'}, formatNumber(n)));
      b.addEventListener('click', () => select(name));
      items.push(h('li', null, b));
    }
    if (!items.length) items.push(h('li', {class: 'muted'}, 'No tasks.'));
    this.familyList.replaceChildren(...items);
  }

  renderTable(state, tasks) {
    const desc = state.sort.startsWith('-');
    const sortKey = SORT_KEYS[state.sort.replace(/^-/, '')] ? state.sort.replace(/^-/, '') : 'updated';
    const keyFn = SORT_KEYS[sortKey];
    const sorted = [...tasks].sort((a, b) => {
      const ka = keyFn(a);
      const kb = keyFn(b);
      const c = ka < kb ? -1 : ka > kb ? 1 : String(a.id).localeCompare(String(b.id));
      return desc ? -c : c;
    });

    const pages = Math.max(1, Math.ceil(sorted.length / PAGE_SIZE));
    const page = Math.min(pages, Math.max(1, parseInt(state.page, 10) || 1));
    const rows = sorted.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);

    this.thead.replaceChildren(h('tr', null, COLUMNS.map((col) => {
      if (!col.sortable) return h('th', {scope: 'col'}, col.label);
      const active = col.key === sortKey;
      const b = h('button', {type: 'button', class: 'sort', dataset: {sort: col.key}},
        col.label, active ? (desc ? ' ▼' : ' ▲') : '');
      b.addEventListener('click', () => updateState({sort: active && !desc ? `-${col.key}` : col.key}));
      return h('th', {scope: 'col', 'aria-sort': active ? (desc ? 'descending' : 'ascending') : 'none'}, b);
    })));

    const upstreamLabel = state.status.startsWith('UPSTREAM_') ? state.status : null;
    this.tbody.replaceChildren(...rows.map((t) => this.row(t, upstreamLabel)));
    if (!rows.length) {
      this.tbody.append(h('tr', {class: 'empty'}, h('td', {colspan: COLUMNS.length}, 'No tasks to show.')));
    }

    const first = sorted.length ? (page - 1) * PAGE_SIZE + 1 : 0;
    this.summary.textContent = `${formatNumber(first)}–${formatNumber((page - 1) * PAGE_SIZE + rows.length)} of ${formatNumber(sorted.length)} tasks`;
    this.renderPager(page, pages);
  }

  row(t, upstreamLabel) {
    const params = t.params && typeof t.params === 'object' ? Object.entries(t.params) : [];
    const pct = progressValue(t.progress_percentage);
    const shownStatus = upstreamLabel || t.status;
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
