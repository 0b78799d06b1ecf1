// The dependency graph tab: dep_graph (or inverse_dep_graph) of one task, drawn as
// layered SVG coloured by status. Clicking a node re-roots the graph on that task.

import {actionButtons} from './actions.js';
import {rpc} from './api.js';
import {h, hashLink, s} from './dom.js';
import {formatNumber, statusClass, statusLabel, STATUS_LABELS} from './format.js';
import {layeredLayout, NODE_H, NODE_W} from './layout.js';
import {fragmentFor, updateState} from './state.js';

/** Most nodes drawn at once; beyond this the drawing would stall the page. */
export const MAX_RENDER_NODES = 1500;
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
    const show = h('button', {type: 'submit', class: 'btn primary'}, 'Show');
    const form = h('form', {class: 'graph-controls'}, this.taskInput, show,
      h('label', null, this.inverse, ' Inverted (what depends on it)'),
      h('label', null, this.hideDone, ' Hide done'),
      this.zoomButtons());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      updateState({task: this.taskInput.value.trim()});
    });
    this.inverse.addEventListener('change', () => updateState({inverse: this.inverse.checked ? '1' : ''}));
    this.hideDone.addEventListener('change', () => updateState({hidedone: this.hideDone.checked ? '1' : ''}));

    this.info = h('div', {class: 'graph-info', id: 'graph-info'});
    this.notice = h('div', {class: 'view-notice', id: 'graph-notice'});
    this.scroller = h('div', {class: 'graph-scroll', id: 'graph-scroll'});
    root.append(form, this.info, this.notice, this.legend(), this.scroller);
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
    const graph = await rpc(method, {task_id: state.task, include_done: state.hidedone !== '1'});
    if (gen !== this.gen) return null;
    return () => this.render(state, graph || {});
  }

  render(state, graph) {
    const rootId = state.task;
    const ids = Object.keys(graph);
    if (!ids.length || !graph[rootId]) {
      this.info.replaceChildren();
      this.notice.replaceChildren(h('p', {class: 'warn'}, 'The scheduler does not know this task.'));
      this.scroller.replaceChildren();
      this.svg = null;
      return;
    }

    const keep = ids.length > MAX_RENDER_NODES ? capNodes(rootId, graph, MAX_RENDER_NODES) : new Set(ids);
    let missing = 0;
    const children = new Map();
    for (const id of keep) {
      const deps = Array.isArray(graph[id].deps) ? graph[id].deps.map(String) : [];
      missing += deps.filter((d) => !graph[d]).length;
      children.set(id, deps.filter((d) => keep.has(d)));
    }

    const rootTask = {...graph[rootId], id: rootId};
    this.info.replaceChildren(
      h('div', {class: 'graph-root'},
        h('span', {class: `badge status-${statusClass(rootTask.status)}`}, statusLabel(rootTask.status)),
        h('span', {class: 'task-title'}, rootTask.display_name || rootId),
        hashLink(fragmentFor({tab: 'tasks', search: rootTask.display_name || rootId}), {class: 'btn small'}, 'In task list')),
      actionButtons(rootTask, {graphLink: false}));

    const notes = [h('span', {class: 'node-count'}, `${formatNumber(ids.length)} tasks`)];
    if (keep.size < ids.length) {
      notes.push(h('span', {class: 'warn'}, ` — drawing the ${formatNumber(keep.size)} nearest the root.`));
    }
    if (missing) {
      notes.push(h('span', {class: 'warn'},
        ` — ${formatNumber(missing)} links lead to tasks the scheduler left out (its max_graph_nodes limit).`));
    }
    this.notice.replaceChildren(h('p', {class: 'info'}, notes));

    const layout = layeredLayout(rootId, children);
    this.draw(rootId, graph, layout, state.inverse === '1');
  }

  draw(rootId, graph, layout, inverted) {
    if (rootId !== this.drawnRoot) {
      // A new graph starts scaled to fit the width (within reason); refreshes keep the zoom.
      const available = this.scroller.clientWidth || layout.width;
      this.scale = Math.max(0.4, Math.min(1, available / layout.width));
      this.drawnRoot = rootId;
    }
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
      return s('path', {class: 'edge', 'marker-end': 'url(#arrow)', dataset: {from, to},
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
      g.dataset.taskId = id;
      const go = () => updateState({task: id});
      g.addEventListener('click', go);
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') go(); });
      return g;
    });

    const defs = s('defs', null, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'}, s('path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrow'})));
    this.svg = s('svg', {class: 'graph', id: 'graph-svg', viewBox: `0 0 ${layout.width} ${layout.height}`,
      role: 'img', 'aria-label': inverted ? 'Tasks that depend on this task' : 'Dependencies of this task'},
    defs, s('g', {class: 'edges'}, edgePaths), s('g', {class: 'nodes'}, nodeEls));
    this.applyScale();
    this.scroller.replaceChildren(this.svg);
  }
}
