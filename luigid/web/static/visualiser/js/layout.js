// Layered ("Sugiyama-style") layout of a task graph, without the DOM: layers by longest
// path from the root, a few barycenter sweeps to cut edge crossings, and wide layers
// wrapped into several rows so hundreds of siblings stay legible.

export const NODE_W = 170;
export const NODE_H = 38;
const H_GAP = 20;
const ROW_GAP = 18;
const LAYER_GAP = 64;
const MARGIN = 20;
/** Widest row before a layer wraps. */
export const MAX_ROW = 12;
const SWEEPS = 4;

/**
 * @param {string} rootId
 * @param {Map<string, string[]>} children  node id -> ids it points to (deps, or dependents when inverted)
 * @returns {{nodes: Map<string, {x:number, y:number, layer:number}>, edges: Array<[string,string]>,
 *            width:number, height:number}}
 */
export function layeredLayout(rootId, children) {
  const ids = [...children.keys()];
  const edges = [];
  const parents = new Map(ids.map((id) => [id, []]));
  for (const [from, tos] of children) {
    for (const to of tos) {
      if (to !== from && children.has(to)) {
        edges.push([from, to]);
        parents.get(to).push(from);
      }
    }
  }

  const layer = assignLayers(rootId, ids, children, parents);
  const layers = [];
  for (const id of discoveryOrder(rootId, ids, children)) {
    (layers[layer.get(id)] ||= []).push(id);
  }
  orderLayers(layers, children, parents);
  return place(layers, edges);
}

/** Breadth-first order from the root, then any unreachable nodes: a stable start. */
function discoveryOrder(rootId, ids, children) {
  const seen = new Set();
  const order = [];
  const visit = (start) => {
    if (seen.has(start)) return;
    seen.add(start);
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      order.push(queue[i]);
      for (const c of children.get(queue[i]) || []) {
        if (children.has(c) && !seen.has(c)) {
          seen.add(c);
          queue.push(c);
        }
      }
    }
  };
  if (children.has(rootId)) visit(rootId);
  for (const id of ids) visit(id);
  return order;
}

/** Longest-path layering over a topological order; nodes on a cycle fall back to BFS depth. */
function assignLayers(rootId, ids, children, parents) {
  const indegree = new Map(ids.map((id) => [id, parents.get(id).length]));
  const layer = new Map();
  const queue = ids.filter((id) => indegree.get(id) === 0);
  for (const id of queue) layer.set(id, 0);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    for (const c of children.get(id) || []) {
      if (!indegree.has(c) || c === id) continue;
      layer.set(c, Math.max(layer.get(c) ?? 0, layer.get(id) + 1));
      indegree.set(c, indegree.get(c) - 1);
      if (indegree.get(c) === 0) queue.push(c);
    }
  }
  if (layer.size < ids.length || queue.length < ids.length) {
    const depth = new Map();
    const order = discoveryOrder(rootId, ids, children);
    for (const id of order) {
      if (!depth.has(id)) depth.set(id, 0);
      for (const c of children.get(id) || []) {
        if (children.has(c) && !depth.has(c)) depth.set(c, depth.get(id) + 1);
      }
    }
    const done = new Set(queue);
    for (const id of ids) if (!done.has(id)) layer.set(id, depth.get(id));
  }
  return layer;
}

function orderLayers(layers, children, parents) {
  const pos = new Map();
  const index = () => {
    for (const row of layers) {
      if (!row) continue;
      row.forEach((id, i) => pos.set(id, i - (row.length - 1) / 2));
    }
  };
  const sortBy = (row, neighbours) => {
    const key = new Map(row.map((id) => {
      const ns = neighbours.get(id) || [];
      const placed = ns.filter((n) => pos.has(n));
      const bary = placed.length ? placed.reduce((sum, n) => sum + pos.get(n), 0) / placed.length : pos.get(id);
      return [id, bary];
    }));
    row.sort((a, b) => key.get(a) - key.get(b));
  };
  index();
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    for (let l = 1; l < layers.length; l++) {
      if (layers[l]) { sortBy(layers[l], parents); index(); }
    }
    for (let l = layers.length - 2; l >= 0; l--) {
      if (layers[l]) { sortBy(layers[l], children); index(); }
    }
  }
}

function place(layers, edges) {
  const nodes = new Map();
  const rowWidth = (n) => n * NODE_W + (n - 1) * H_GAP;
  let widest = 0;
  for (const row of layers) if (row) widest = Math.max(widest, rowWidth(Math.min(row.length, MAX_ROW)));
  const centre = MARGIN + widest / 2;
  let y = MARGIN;
  layers.forEach((row, l) => {
    if (!row) return;
    for (let start = 0; start < row.length; start += MAX_ROW) {
      const chunk = row.slice(start, start + MAX_ROW);
      const left = centre - rowWidth(chunk.length) / 2;
      chunk.forEach((id, i) => {
        nodes.set(id, {x: left + i * (NODE_W + H_GAP), y, layer: l});
      });
      y += NODE_H + ROW_GAP;
    }
    y += LAYER_GAP - ROW_GAP;
  });
  return {nodes, edges, width: widest + 2 * MARGIN, height: Math.max(y - LAYER_GAP + MARGIN + ROW_GAP, NODE_H + 2 * MARGIN)};
}
