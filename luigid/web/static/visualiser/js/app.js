// Entry point: wires the header and the four views to the URL fragment and refreshes
// the visible view on a timer without disturbing what the user is doing.

import {setChangeListener} from './actions.js';
import {h} from './dom.js';
import {GraphView} from './graph.js';
import {Header, setHeaderChangeListener} from './header.js';
import {ResourcesView, setResourcesChangeListener} from './resources.js';
import {readState, TABS} from './state.js';
import {TasksView} from './tasks.js';
import {setWorkersChangeListener, WorkersView} from './workers.js';

const REFRESH_MS = 10000;
const VIEW_CLASSES = {tasks: TasksView, graph: GraphView, workers: WorkersView, resources: ResourcesView};

const header = new Header(document.getElementById('header'));
const main = document.getElementById('main');
const errorBanner = document.getElementById('connection-error');
const sections = new Map();
const views = new Map();

function viewFor(tab) {
  if (!views.has(tab)) {
    const section = h('section', {class: 'view', id: `view-${tab}`, 'aria-labelledby': `tab-${tab}`});
    main.appendChild(section);
    sections.set(tab, section);
    views.set(tab, new VIEW_CLASSES[tab](section));
  }
  return views.get(tab);
}

/**
 * Run a synchronous re-render and put the window back where the reader had it: a background
 * refresh must not move the page. The position is read just before drawing, not before the
 * fetch, so a scroll made while the data was on its way is kept too.
 */
function keepScroll(draw) {
  const {scrollX, scrollY} = window;
  try {
    draw();
  } finally {
    if (Math.abs(window.scrollY - scrollY) > 1) window.scrollTo(scrollX, scrollY);
  }
}

let inFlight = null;
let queued = false;

/** Refresh the header and the current view; overlapping calls collapse into one more. */
async function refresh() {
  if (inFlight) {
    queued = true;
    return inFlight;
  }
  document.body.dataset.refreshing = 'true';
  inFlight = (async () => {
    do {
      queued = false;
      const state = readState();
      header.showState(state);
      const view = viewFor(state.tab);
      for (const tab of TABS) if (sections.has(tab)) sections.get(tab).hidden = tab !== state.tab;
      document.body.dataset.tab = state.tab;
      try {
        const draws = await Promise.all([view.load(state), header.load()]);
        keepScroll(() => draws.forEach((draw) => draw && draw()));
        errorBanner.hidden = true;
        header.markRefreshed();
      } catch (err) {
        errorBanner.textContent = `Could not reach the scheduler: ${err.message}`;
        errorBanner.hidden = false;
      }
      document.body.dataset.loaded = 'true';
    } while (queued);
    inFlight = null;
    // Lets tests (and anything else watching) tell a settled page from one mid-refresh.
    document.body.dataset.refreshing = 'false';
  })();
  return inFlight;
}

setChangeListener(refresh);
setHeaderChangeListener(refresh);
setWorkersChangeListener(refresh);
setResourcesChangeListener(refresh);
window.addEventListener('hashchange', () => refresh());
header.refreshNow.addEventListener('click', () => refresh());
setInterval(() => {
  if (header.autoRefresh.checked && !document.hidden) refresh();
}, REFRESH_MS);
refresh();
