// Lays a graph out off the page's main thread (see graph.js): a big graph's layout then
// never freezes scrolling, typing or the other tabs.

import {layeredLayout} from './layout.js';

self.onmessage = (ev) => {
  const {job, rootId, children} = ev.data;
  const layout = layeredLayout(rootId, new Map(children));
  self.postMessage({job, nodes: [...layout.nodes], edges: layout.edges, width: layout.width, height: layout.height});
};
