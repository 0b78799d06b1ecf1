// The resources tab: how much of each resource is in use, which running tasks hold it,
// and a way to change a resource's total.

import {rpc, taskArray} from './api.js';
import {notify} from './dialog.js';
import {h, hashLink} from './dom.js';
import {formatNumber, formatResources, heldResources} from './format.js';
import {fragmentFor} from './state.js';

let onChanged = () => {};
export function setResourcesChangeListener(fn) {
  onChanged = fn;
}

export class ResourcesView {
  constructor(root) {
    this.root = root;
    this.gen = 0;
    this.list = h('div', {class: 'resource-list', id: 'resource-list'});
    root.append(this.list);
  }

  /** Fetch what `state` asks for; resolve to a function that draws it, or null when a newer load has begun. */
  async load() {
    const gen = ++this.gen;
    const resources = await rpc('resource_list', {});
    if (gen !== this.gen) return null;
    return () => this.render(Array.isArray(resources) ? resources : []);
  }

  render(resources) {
    const list = [...resources].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    const editing = new Map([...this.list.querySelectorAll('input.resource-total')]
      .filter((i) => i === document.activeElement || i.dataset.dirty === '1')
      .map((i) => [i.dataset.resource, {value: i.value, focused: i === document.activeElement}]));
    const cards = list.map((r) => this.card(r, editing.get(String(r.name))));
    this.list.replaceChildren(...(cards.length ? cards : [h('p', {class: 'muted'}, 'No resources are configured.')]));
    for (const input of this.list.querySelectorAll('input.resource-total')) {
      if (editing.get(input.dataset.resource)?.focused) input.focus();
    }
  }

  card(r, editing) {
    const name = String(r.name);
    const used = Number(r.num_used) || 0;
    const total = Number(r.num_total) || 0;
    const pct = total > 0 ? Math.min(100, (used / total) * 100) : (used > 0 ? 100 : 0);
    const input = h('input', {type: 'number', min: 0, step: 1, class: 'resource-total',
      'aria-label': `Total of ${name}`, value: editing ? editing.value : String(total)});
    input.dataset.resource = name;
    if (editing) input.dataset.dirty = '1';
    input.addEventListener('input', () => { input.dataset.dirty = '1'; });
    const save = h('button', {type: 'button', class: 'btn small act-update-resource'}, 'Set total');
    save.addEventListener('click', async () => {
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 0) {
        notify('A resource total must be a whole number, 0 or more', 'error');
        return;
      }
      try {
        const ok = await rpc('update_resource', {resource: name, amount: n});
        if (ok === false) throw new Error('the scheduler refused the new total');
        input.dataset.dirty = '';
        notify(`${name} total set to ${n}`);
      } catch (err) {
        notify(err.message, 'error');
      }
      onChanged();
    });
    const holders = taskArray(r.running);
    const card = h('article', {class: 'resource-card'},
      h('header', null, h('h2', null, name),
        h('span', {class: 'resource-usage'}, `${formatNumber(used)} of ${formatNumber(total)} used`)),
      h('div', {class: `meter${used > total ? ' over' : ''}`}, h('div', {class: 'meter-fill', style: {width: `${pct}%`}})),
      h('div', {class: 'resource-actions'}, input, save),
      holders.length
        ? h('ul', {class: 'holders'}, holders.map((t) => {
          const li = h('li', null,
            hashLink(fragmentFor({tab: 'graph', task: t.id}), null, t.display_name || t.id),
            h('span', {class: 'muted'}, ` — ${formatResources(t.resources)}`));
          li.dataset.taskId = t.id;
          return li;
        }))
        : h('p', {class: 'muted'}, 'No running task holds it.'));
    card.dataset.resource = name;
    return card;
  }
}
