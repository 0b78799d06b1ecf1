// The task list tab: per-status counts that act as filters, a family sidebar, a
// server-side search and a paged table. Counts come from the server (task_list answers
// with {"num_tasks": N} past max_shown_tasks), so the browser never pulls every task.

import {actionButtons, progressBar} from './actions.js';
import {isCountReply, rpc, taskArray} from './api.js';
import {externalLink, h} from './dom.js';
import {
  formatNumber, formatResources, formatTime, formatTimeParts, heldResources, progressValue, statusClass, statusLabel,
} from './format.js';
import {normaliseStatuses, STATUS_BOXES, statusSet, updateState} from './state.js';

/** Most tasks the page asks the server for in one list. */
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

const SORT_KEYS = {
  name: (t) => String(t.display_name || t.id).toLowerCase(),
  status: (t) => String(t.box),
  started: (t) => (typeof t.start_time === 'number' ? t.start_time : 0),
  updated: (t) => (typeof t.last_updated === 'number' ? t.last_updated : 0),
  priority: (t) => (typeof t.priority === 'number' ? t.priority : 0),
  progress: (t) => progressValue(t.progress_percentage) ?? -1,
};

/** task_list arguments for a status box ('' is every task). */
function boxArgs(key) {
  return UPSTREAM_BOXES.includes(key)
    ? {status: 'PENDING', upstream_status: key}
    : {status: key, upstream_status: ''};
}

function searchArgs(search) {
  return search && search.trim() ? {search: search.trim()} : {};
}

/** Rows per page for a state: its `length` when usable (-1: all loaded rows), else PAGE_SIZE. */
function pageSize(state) {
  const n = parseInt(state.length, 10);
  if (n === -1) return TABLE_CAP;
  return n >= 1 ? Math.min(n, TABLE_CAP) : PAGE_SIZE;
}

/**
 * One task_list call: {tasks, count}, or {tasks: null, count} when the server answers with
 * a count (null: one it cannot tell cheaply). Without `maxShown` the scheduler's own
 * max_shown_tasks applies.
 */
async function fetchTasks(args, search, maxShown) {
  const limit = maxShown ? {max_shown_tasks: maxShown} : {};
  const reply = await rpc('task_list', {...args, ...limit, ...searchArgs(search)});
  if (isCountReply(reply)) return {tasks: null, count: reply.num_tasks < 0 ? null : reply.num_tasks};
  const tasks = taskArray(reply);
  return {tasks, count: tasks.length};
}

function sum(counts) {
  return counts.some((c) => c === null) ? null : counts.reduce((a, b) => a + b, 0);
}

/**
 * The number for every box. As on luigi's page each task counts in one box only: Pending
 * leaves out the pending tasks that are upstream failed or upstream disabled. Those the
 * server can only find by looking at each pending task, so their lists are fetched (up to
 * TABLE_CAP); past that Pending shows every pending task, as luigi's box then does.
 * `upstreamOf` maps the upstream tasks found to their box.
 */
async function loadCounts(search) {
  const keys = ['', ...STATUS_BOXES];
  const replies = await Promise.all(keys.map((key) =>
    // For plain statuses a limit of one makes the server answer with just the count.
    fetchTasks(boxArgs(key), search, UPSTREAM_BOXES.includes(key) ? TABLE_CAP : 1)));
  const counts = new Map(keys.map((key, i) => [key, replies[i].count]));
  const upstreamOf = new Map();
  let upstreamListed = true;
  for (const key of UPSTREAM_BOXES) {
    const {tasks} = replies[keys.indexOf(key)];
    if (tasks === null) upstreamListed = false;
    for (const t of tasks || []) upstreamOf.set(t.id, key);
  }
  const upstream = sum(UPSTREAM_BOXES.map((key) => counts.get(key)));
  const pending = counts.get('PENDING');
  const pendingSorted = upstream !== null && pending !== null;
  if (pendingSorted) counts.set('PENDING', Math.max(0, pending - upstream));
  return {counts, upstreamOf: upstreamListed ? upstreamOf : null, pendingSorted};
}

/**
 * The tasks of one box, each carrying the box as `box`, or {tasks: null, count} when there
 * are too many. `upstreamOf` (null: not known for this search) lets Pending leave out the
 * upstream tasks without asking for them again.
 */
async function listBox(key, search, maxShown, upstreamOf) {
  if (key !== 'PENDING') {
    const got = await fetchTasks(boxArgs(key), search, maxShown);
    for (const t of got.tasks || []) t.box = key;
    return got;
  }
  let upstream = upstreamOf;
  if (upstream === null) {
    upstream = new Map();
    for (const box of UPSTREAM_BOXES) {
      const got = await fetchTasks(boxArgs(box), search, TABLE_CAP);
      if (got.tasks === null) return {tasks: null, count: null};
      for (const t of got.tasks) upstream.set(t.id, box);
    }
  }
  const got = await fetchTasks(boxArgs('PENDING'), search, maxShown);
  if (got.tasks === null) return {tasks: null, count: got.count === null ? null : Math.max(0, got.count - upstream.size)};
  const tasks = got.tasks.filter((t) => !upstream.has(t.id));
  for (const t of tasks) t.box = 'PENDING';
  return {tasks, count: tasks.length};
}

/** The tasks of a set of boxes (none: every task, labelled by box where `upstreamOf` knows it). */
async function listBoxes(boxes, search, maxShown, upstreamOf) {
  if (!boxes.length) {
    const got = await fetchTasks(boxArgs(''), search, maxShown);
    for (const t of got.tasks || []) t.box = (upstreamOf && upstreamOf.get(t.id)) || t.status;
    return got;
  }
  const parts = await Promise.all(boxes.map((key) => listBox(key, search, maxShown, upstreamOf)));
  if (parts.some((p) => p.tasks === null)) return {tasks: null, count: sum(parts.map((p) => p.count))};
  const tasks = parts.flatMap((p) => p.tasks);
  return {tasks, count: tasks.length};
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

    const counts = await loadCounts(state.search);
    if (gen !== this.gen) return null;
    const listing = await this.fetchListing(state, boxes, counts);
    if (gen !== this.gen) return null;
    return () => {
      this.renderCounts(counts);
      this.renderListing(state, listing);
    };
  }

  /** The page-size menu: luigi's sizes and ours, plus whatever size the link asked for. */
  showPageSize(state) {
    const size = pageSize(state);
    const sizes = new Set([...PAGE_SIZES, size]);
    const options = [...sizes].sort((a, b) => a - b).map((n) =>
      h('option', {value: n === TABLE_CAP ? '-1' : String(n)}, n === TABLE_CAP ? 'All' : String(n)));
    if (!sizes.has(TABLE_CAP)) options.push(h('option', {value: '-1'}, 'All'));
    this.pageSize.replaceChildren(...options);
    this.pageSize.value = size === TABLE_CAP ? '-1' : String(size);
  }

  /**
   * The tasks of the boxes switched on (none: every task) and the search, or just their
   * number when there are too many. Within TABLE_CAP the requests carry no limit of their
   * own, so the scheduler's configured max_shown_tasks still applies.
   */
  async fetchListing(state, boxes, {counts, upstreamOf}) {
    const known = boxes.length ? sum(boxes.map((key) => counts.get(key))) : counts.get('');
    let got = {tasks: null, count: known};
    let narrowedByFamily = false;
    if (known === 0) got = {tasks: [], count: 0};
    else if (known !== null && known <= TABLE_CAP) got = await listBoxes(boxes, state.search, undefined, upstreamOf);
    if (got.tasks === null && state.family) {
      // Too many for the page: let the server narrow to the family too. Display names
      // start with 'Family(' so that is a search term the server can match.
      got = await listBoxes(boxes, `${state.search} ${state.family}(`.trim(), TABLE_CAP, null);
      narrowedByFamily = true;
    }
    if (got.tasks === null) return {over: true, count: got.count === null ? -1 : got.count, tasks: [], narrowedByFamily};
    return {over: false, count: null, tasks: got.tasks, narrowedByFamily};
  }

  renderCounts({counts, pendingSorted}) {
    for (const [key, button] of this.countButtons) {
      const number = button.querySelector('.count-number');
      const value = counts.get(key);
      number.textContent = value === null ? '?' : formatNumber(value);
      number.title = value === null ? `More than ${formatNumber(TABLE_CAP)} pending tasks: search to narrow`
        : key === 'PENDING' && !pendingSorted
          ? 'Includes the pending tasks that are upstream failed or upstream disabled: too many pending tasks to tell them apart'
          : '';
    }
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

    const size = pageSize(state);
    const pages = Math.max(1, Math.ceil(sorted.length / size));
    const page = Math.min(pages, Math.max(1, parseInt(state.page, 10) || 1));
    const rows = sorted.slice((page - 1) * size, page * size);

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

    const first = sorted.length ? (page - 1) * size + 1 : 0;
    this.summary.textContent = `${formatNumber(first)}–${formatNumber((page - 1) * size + rows.length)} of ${formatNumber(sorted.length)} tasks`;
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
