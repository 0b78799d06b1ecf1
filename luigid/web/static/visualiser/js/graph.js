// The dependency graph tab: dep_graph (or inverse_dep_graph) of one task, drawn as
// layered SVG coloured by status. Clicking a node re-roots the graph on that task. The
// layout runs in a Web Worker, so a graph of thousands of tasks never freezes the page;
// past COLLAPSE_AT tasks (or when asked) the graph is drawn one node per task family.

import {actionButtons} from './actions.js';
import {rpc} from './api.js';
import {h, hashLink, s} from './dom.js';
import {formatNumber, statusClass, statusLabel, STATUS_LABELS} from './format.js';
import {layeredLayout, NODE_H, NODE_W} from './layout.js';
import {fragmentFor, updateState} from './state.js';

/** Most task nodes drawn at once; beyond this a graph is collapsed by family unless told not to. */
export const MAX_RENDER_NODES = 10000;
/** Above this many tasks the graph starts collapsed by family (`collapse=0` draws the tasks). */
export const COLLAPSE_AT = MAX_RENDER_NODES;
/** Graphs with more nodes than this are drawn without arrowheads. */
const BIG_GRAPH = 1500;
/** Statuses from the one that matters most to the least: a family node wears the first found. */
const SEVERITY = ['FAILED', 'DISABLED', 'RUNNING', 'BATCH_RUNNING', 'PENDING', 'UNKNOWN', 'DONE'];

let worker = null;
let jobs = 0;
const waiting = new Map();

/** layeredLayout in the Web Worker (on this thread where workers cannot start). */
function layoutOffThread(rootId, children) {
  if (worker === null && typeof Worker !== 'undefined') {
    try {
      worker = new Worker(new URL('./layout-worker.js', import.meta.url), {type: 'module'});
      worker.onmessage = (ev) => {
        const {job, nodes, edges, width, height} = ev.data;
        const done = waiting.get(job);
        waiting.delete(job);
        if (done) done.resolve({nodes: new Map(nodes), edges, width, height});
      };
      worker.onerror = () => {
        // a worker that cannot run (an old browser, a policy): lay out here from now on
        worker = false;
        for (const [, pending] of waiting) pending.resolve(layeredLayout(pending.rootId, pending.children));
        waiting.clear();
      };
    } catch {
      worker = false;
    }
  }
  if (!worker) return Promise.resolve(layeredLayout(rootId, children));
  const job = ++jobs;
  return new Promise((resolve) => {
    waiting.set(job, {resolve, rootId, children});
    worker.postMessage({job, rootId, children: [...children]});
  });
}

/** One node per family: its tasks, the most telling status among them, edges between families. */
function byFamily(rootId, graph, keep) {
  const familyOf = (id) => `family:${graph[id].name || id}`;
  const families = {};
  const children = new Map();
  for (const id of keep) {
    const key = familyOf(id);
    const node = families[key] ||= {name: graph[id].name || id, count: 0, statuses: new Set(), deps: new Set()};
    node.count += 1;
    node.statuses.add(graph[id].status);
    if (!children.has(key)) children.set(key, new Set());
    for (const d of graph[id].deps || []) {
      if (keep.has(d) && familyOf(d) !== key) children.get(key).add(familyOf(d));
    }
  }
  const nodes = {};
  for (const [key, f] of Object.entries(families)) {
    nodes[key] = {name: f.name, params: {tasks: f.count}, family: f.name,
      display_name: `${f.name}: ${f.count} task${f.count === 1 ? '' : 's'}`,
      status: SEVERITY.find((st) => f.statuses.has(st)) || 'UNKNOWN'};
  }
  return {root: familyOf(rootId), nodes, children: new Map([...children].map(([k, v]) => [k, [...v]]))};
}
const LABEL_CHARS = 24;

function truncate(text, n) {
  const str = String(text);
  return str.length > n ? str.slice(0, n - 1) + '…' : str;
}

function paramSummary(params) {
  if (!params || typeof params !== 'object') return '';
  return Object.entries(params).map(([k, v]) => `${k}=${v}`).join(', ');
}

/** Keep the first `limit` nodes in breadth-first order from the root. */
function capNodes(rootId, graph, limit) {
  const keep = new Set();
  const queue = [rootId];
  keep.add(rootId);
  for (let i = 0; i < queue.length && keep.size < limit; i++) {
    for (const d of (graph[queue[i]] && graph[queue[i]].deps) || []) {
      if (graph[d] && !keep.has(d) && keep.size < limit) {
        keep.add(d);
        queue.push(d);
      }
    }
  }
  return keep;
}

export class GraphView {
  constructor(root) {
    this.root = root;
    this.gen = 0;
    this.scale = 1;

    this.taskInput = h('input', {type: 'text', id: 'graph-task', placeholder: 'Task id',
      'aria-label': 'Task id', autocomplete: 'off', spellcheck: 'false'});
    this.inverse = h('input', {type: 'checkbox', id: 'graph-inverse'});
    this.hideDone = h('input', {type: 'checkbox', id: 'graph-hidedone'});
    this.collapse = h('input', {type: 'checkbox', id: 'graph-collapse'});
    const show = h('button', {type: 'submit', class: 'btn primary'}, 'Show');
    const form = h('form', {class: 'graph-controls'}, this.taskInput, show,
      h('label', null, this.inverse, ' Inverted (what depends on it)'),
      h('label', null, this.hideDone, ' Hide done'),
      h('label', {title: `Big graphs (over ${formatNumber(COLLAPSE_AT)} tasks) start collapsed`}, this.collapse, ' One node per family'),
      this.zoomButtons());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      updateState({task: this.taskInput.value.trim()});
    });
    this.inverse.addEventListener('change', () => updateState({inverse: this.inverse.checked ? '1' : ''}));
    this.hideDone.addEventListener('change', () => updateState({hidedone: this.hideDone.checked ? '1' : ''}));
    this.collapse.addEventListener('change', () => updateState({collapse: this.collapse.checked ? '1' : '0'}));

    this.info = h('div', {class: 'graph-info', id: 'graph-info'});
    this.notice = h('div', {class: 'view-notice', id: 'graph-notice'});
    this.scroller = h('div', {class: 'graph-scroll', id: 'graph-scroll'});
    root.append(form, this.info, this.notice, this.legend(), this.scroller);
    this.panByDragging();
  }

  /** Drag the background to pan (scrolling the view: the browser moves it without redrawing). */
  panByDragging() {
    const view = this.scroller;
    view.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 || (ev.target.closest && ev.target.closest('g.node'))) return;
      const from = {x: ev.clientX, y: ev.clientY, left: view.scrollLeft, top: view.scrollTop};
      const move = (e) => {
        view.scrollLeft = from.left - (e.clientX - from.x);
        view.scrollTop = from.top - (e.clientY - from.y);
      };
      const up = () => {
        window.removeEventListener('pointermove', move);
        window.removeEventListener('pointerup', up);
        view.classList.remove('panning');
      };
      window.addEventListener('pointermove', move);
      window.addEventListener('pointerup', up);
      view.classList.add('panning');
    });
  }

  zoomButtons() {
    const zoom = (factor) => {
      this.scale = factor === 0 ? 1 : Math.min(3, Math.max(0.2, this.scale * factor));
      this.applyScale();
    };
    const b = (label, title, factor) => {
      const el = h('button', {type: 'button', class: 'btn small', title}, label);
      el.addEventListener('click', () => zoom(factor));
      return el;
    };
    return h('span', {class: 'zoom'}, b('−', 'Zoom out', 1 / 1.25), b('100%', 'Actual size', 0), b('+', 'Zoom in', 1.25));
  }

  legend() {
    const items = ['PENDING', 'RUNNING', 'BATCH_RUNNING', 'DONE', 'FAILED', 'DISABLED', 'UNKNOWN']
      .map((st) => h('span', {class: 'legend-item'}, h('span', {class: `swatch status-${statusClass(st)}`}), STATUS_LABELS[st]));
    return h('div', {class: 'legend'}, items);
  }

  applyScale() {
    if (!this.svg) return;
    this.svg.setAttribute('width', String(Math.ceil(this.contentW * this.scale)));
    this.svg.setAttribute('height', String(Math.ceil(this.contentH * this.scale)));
  }

  /** Fetch what `state` asks for; resolve to a function that draws it, or null when a newer load has begun. */
  async load(state) {
    const gen = ++this.gen;
    if (document.activeElement !== this.taskInput) this.taskInput.value = state.task;
    this.inverse.checked = state.inverse === '1';
    this.hideDone.checked = state.hidedone === '1';
    if (!state.task) {
      return () => {
        this.info.replaceChildren();
        this.notice.replaceChildren(h('p', {class: 'muted'}, 'Enter a task id, or choose "Graph" on a task in the task list.'));
        this.scroller.replaceChildren();
        this.svg = null;
      };
    }
    const method = state.inverse === '1' ? 'inverse_dep_graph' : 'dep_graph';
    const graph = (await rpc(method, {task_id: state.task, include_done: state.hidedone !== '1'})) || {};
    if (gen !== this.gen) return null;
    const rootId = state.task;
    const ids = Object.keys(graph);
    if (!ids.length || !graph[rootId]) return () => this.unknown();

    const collapsed = state.collapse === '1' || (state.collapse !== '0' && ids.length > COLLAPSE_AT);
    const keep = !collapsed && ids.length > MAX_RENDER_NODES ? capNodes(rootId, graph, MAX_RENDER_NODES) : new Set(ids);
    let missing = 0;
    let children = new Map();
    for (const id of keep) {
      const deps = Array.isArray(graph[id].deps) ? graph[id].deps.map(String) : [];
      missing += deps.filter((d) => !graph[d]).length;
      children.set(id, deps.filter((d) => keep.has(d)));
    }
    let drawn = {root: rootId, nodes: graph};
    if (collapsed) {
      const families = byFamily(rootId, graph, keep);
      drawn = {root: families.root, nodes: families.nodes};
      children = families.children;
    }
    const started = performance.now();
    const layout = await layoutOffThread(drawn.root, children);
    if (gen !== this.gen) return null;
    const laidOut = performance.now() - started;
    return () => this.render(state, graph, {ids, keep, missing, collapsed, drawn, layout, laidOut});
  }

  unknown() {
    this.info.replaceChildren();
    this.notice.replaceChildren(h('p', {class: 'warn'}, 'The scheduler does not know this task.'));
    this.scroller.replaceChildren();
    this.svg = null;
  }

  render(state, graph, {ids, keep, missing, collapsed, drawn, layout, laidOut}) {
    const rootId = state.task;
    this.collapse.checked = collapsed;

    const rootTask = {...graph[rootId], id: rootId};
    this.info.replaceChildren(
      h('div', {class: 'graph-root'},
        h('span', {class: `badge status-${statusClass(rootTask.status)}`}, statusLabel(rootTask.status)),
        h('span', {class: 'task-title'}, rootTask.display_name || rootId),
        hashLink(fragmentFor({tab: 'tasks', search: rootTask.display_name || rootId}), {class: 'btn small'}, 'In task list')),
      actionButtons(rootTask, {graphLink: false}));

    const notes = [h('span', {class: 'node-count'}, `${formatNumber(ids.length)} tasks`)];
    if (collapsed) {
      notes.push(h('span', {class: 'collapsed-note'},
        ` in ${formatNumber(layout.nodes.size)} families, one node each (click one to list its tasks).`));
    } else if (keep.size < ids.length) {
      notes.push(h('span', {class: 'warn'}, ` — drawing the ${formatNumber(keep.size)} nearest the root.`));
    }
    if (missing) {
      notes.push(h('span', {class: 'warn'},
        ` — ${formatNumber(missing)} links lead to tasks the scheduler left out (its max_graph_nodes limit).`));
    }
    this.notice.replaceChildren(h('p', {class: 'info'}, notes));

    const drawStart = performance.now();
    this.draw(drawn.root, drawn.nodes, layout, state.inverse === '1', collapsed);
    // for whoever measures (bench/ui_scale.py): milliseconds of layout and of building the SVG
    this.scroller.dataset.layoutMs = String(Math.round(laidOut));
    this.scroller.dataset.drawMs = String(Math.round(performance.now() - drawStart));
  }

  draw(rootId, graph, layout, inverted, collapsed) {
    if (rootId !== this.drawnRoot) {
      // A new graph starts scaled to fit the width (within reason); refreshes keep the zoom.
      const available = this.scroller.clientWidth || layout.width;
      this.scale = Math.max(0.4, Math.min(1, available / layout.width));
      this.drawnRoot = rootId;
    }
    // Arrowheads are drawn per edge and cost most of a big graph's painting; in a layered
    // graph every edge points down anyway, so big ones go without.
    const big = layout.nodes.size > BIG_GRAPH;
    this.contentW = layout.width;
    this.contentH = layout.height;
    const edgePaths = layout.edges.map(([from, to]) => {
      const a = layout.nodes.get(from);
      const b = layout.nodes.get(to);
      const x1 = a.x + NODE_W / 2;
      const y1 = a.y + NODE_H;
      const x2 = b.x + NODE_W / 2;
      const y2 = b.y;
      const dy = Math.max(20, (y2 - y1) / 2);
      return s('path', {class: 'edge', 'marker-end': big ? null : 'url(#arrow)', dataset: {from, to},
        d: `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}`});
    });

    const nodeEls = [...layout.nodes].map(([id, p]) => {
      const t = graph[id];
      const name = t.name || id;
      const params = paramSummary(t.params);
      const full = `${t.display_name || (params ? `${name}(${params})` : name)}\n${statusLabel(t.status)}`;
      const g = s('g', {class: `node status-${statusClass(t.status)}${id === rootId ? ' root' : ''}`,
        transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'link'},
      s('title', null, full),
      s('rect', {width: NODE_W, height: NODE_H, rx: 6, ry: 6}),
      s('text', {x: 8, y: 15, class: 'node-name'}, truncate(name, LABEL_CHARS)),
      s('text', {x: 8, y: 30, class: 'node-params'}, truncate(params, LABEL_CHARS)));
      if (collapsed) g.dataset.family = t.family;
      else g.dataset.taskId = id;
      return g;
    });

    const defs = s('defs', null, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'}, s('path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrow'})));
    this.svg = s('svg', {class: big ? 'graph big' : 'graph', id: 'graph-svg', viewBox: `0 0 ${layout.width} ${layout.height}`,
      role: 'img', 'aria-label': inverted ? 'Tasks that depend on this task' : 'Dependencies of this task'},
    defs, s('g', {class: 'edges'}, edgePaths), s('g', {class: 'nodes'}, nodeEls));
    // one listener for every node: a click re-roots on the task, or lists a family's tasks
    const pick = (ev) => {
      const node = ev.target.closest && ev.target.closest('g.node');
      if (!node) return;
      if (node.dataset.family !== undefined) updateState({tab: 'tasks', family: node.dataset.family, page: '1'});
      else updateState({task: node.dataset.taskId});
    };
    this.svg.addEventListener('click', pick);
    this.svg.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') pick(ev); });
    this.applyScale();
    this.scroller.replaceChildren(this.svg);
  }
}
