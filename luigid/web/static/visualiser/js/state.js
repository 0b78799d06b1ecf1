// All view state lives in the URL fragment, so a link reproduces the view and the
// browser's back button walks through past views.

const DEFAULTS = {
  tab: 'tasks',
  status: '',
  family: '',
  search: '',
  sort: '-updated',
  page: '1',
  task: '',
  inverse: '',
  hidedone: '',
};

export const TABS = ['tasks', 'graph', 'workers', 'resources'];

export function readState() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const state = {...DEFAULTS};
  for (const key of Object.keys(DEFAULTS)) {
    const value = params.get(key);
    if (value !== null) state[key] = value;
  }
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
  return params.toString();
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
