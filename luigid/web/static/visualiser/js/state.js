// All view state lives in the URL fragment, so a link reproduces the view and the
// browser's back button walks through past views. Links in luigi's fragment format (its
// bookmarks, and the links its own page builds) are read too; what this page writes back
// is always its own form, so a luigi key never lingers after the reader changes the view.

const DEFAULTS = {
  tab: 'tasks',
  status: '',
  family: '',
  search: '',
  sort: '-updated',
  page: '1',
  length: '',
  task: '',
  inverse: '',
  hidedone: '',
  collapse: '',
};

export const TABS = ['tasks', 'graph', 'workers', 'resources'];

/** The status boxes in the order they are shown. `status` holds a comma-separated set of them. */
export const STATUS_BOXES = [
  'PENDING', 'RUNNING', 'BATCH_RUNNING', 'DONE', 'FAILED', 'UPSTREAM_FAILED', 'DISABLED', 'UPSTREAM_DISABLED',
];

// luigi names a sort column by its place in luigi's task table: status, name, parameters,
// priority, time of last update (the sixth, actions, is not sortable). Parameters sort
// as the name does here: display names hold the parameters.
const LUIGI_SORT_COLUMNS = ['status', 'name', 'name', 'priority', 'updated'];

/** A status set in canonical form: known boxes only, each once, in box order, comma-separated. */
export function normaliseStatuses(values) {
  const wanted = new Set(values.flatMap((v) => String(v).split(',')).map((v) => v.trim().toUpperCase()));
  return STATUS_BOXES.filter((key) => wanted.has(key)).join(',');
}

/** The status boxes a state has switched on; empty means every task. */
export function statusSet(state) {
  return state.status ? state.status.split(',') : [];
}

/** luigi's `statuses`: a JSON list of box names. Anything else selects nothing. */
function luigiStatuses(raw) {
  try {
    const list = JSON.parse(raw);
    return Array.isArray(list) ? list.map(String) : [];
  } catch {
    return [];
  }
}

/** luigi's `order`, "column,direction" (DataTables' [[column,"direction"]] too), as our `sort`; null if unusable. */
function luigiSort(raw) {
  const [column, direction] = raw.replace(/[[\]"'\s]/g, '').split(',');
  if (!/^\d+$/.test(column || '')) return null;
  const key = LUIGI_SORT_COLUMNS[Number(column)];
  if (!key) return null;
  return (direction || '').toLowerCase() === 'desc' ? `-${key}` : key;
}

/**
 * Fill in what luigi's keys ask for, wherever the fragment lacks our own key for it.
 * luigi's `visType` (its two graph renderers), `filterOnServer` (our search always runs on
 * the server) and `resources` (which resource panels are open) change nothing here.
 */
function readLuigiKeys(params, state) {
  const ours = (key) => params.has(key);
  if (!ours('task') && params.get('taskId')) state.task = params.get('taskId');
  // luigi hides done tasks only for hideDone=1, but inverts the graph for any value.
  if (!ours('hidedone') && params.has('hideDone')) state.hidedone = params.get('hideDone') === '1' ? '1' : '';
  if (!ours('inverse') && params.has('invert')) state.inverse = params.get('invert') ? '1' : '';
  if (!ours('search') && params.has('search__search')) state.search = params.get('search__search');
  if (!ours('sort') && params.has('order')) state.sort = luigiSort(params.get('order')) || state.sort;
  // luigi's Resources menu entry links to tab=resource; its page then shows the resources.
  if (state.tab === 'resource') state.tab = 'resources';
}

export function readState() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const state = {...DEFAULTS};
  for (const key of Object.keys(DEFAULTS)) {
    const value = params.get(key);
    if (value !== null) state[key] = value;
  }
  readLuigiKeys(params, state);
  // Ours may come as status=A,B or repeated (status=A&status=B); luigi's as statuses=["A","B"].
  const statuses = params.has('status') ? params.getAll('status') : luigiStatuses(params.get('statuses') || '');
  state.status = normaliseStatuses(statuses);
  if (!TABS.includes(state.tab)) state.tab = DEFAULTS.tab;
  return state;
}

export function fragmentFor(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (key in DEFAULTS && value !== DEFAULTS[key] && value !== undefined && value !== null) {
      params.set(key, String(value));
    }
  }
  // Commas need no escaping in a fragment; kept bare, status=FAILED,DISABLED stays legible.
  return params.toString().replace(/%2C/gi, ',');
}

/**
 * Apply a change to the state. A new history entry is pushed unless `replace` is set
 * (used while typing in a search box, so back skips keystrokes). Listeners are told
 * either way.
 */
export function updateState(patch, {replace = false} = {}) {
  const next = {...readState(), ...patch};
  const hash = '#' + fragmentFor(next);
  if (hash === location.hash || (hash === '#' && location.hash === '')) return;
  if (replace) {
    history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}
