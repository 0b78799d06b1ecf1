// The page header: tabs, the scheduler pause switch (only when the scheduler allows
// pausing), a link to the task-history pages (only when history is recorded) and, with
// high availability on, which node leads (GET ../../leader; 404 without HA: nothing shown).

import {rpc} from './api.js';
import {notify} from './dialog.js';
import {h, relativeLink} from './dom.js';
import {fragmentFor, TABS} from './state.js';

const TAB_LABELS = {tasks: 'Tasks', graph: 'Graph', workers: 'Workers', resources: 'Resources'};

let onChanged = () => {};
export function setHeaderChangeListener(fn) {
  onChanged = fn;
}

export class Header {
  constructor(root) {
    this.tabLinks = new Map(TABS.map((tab) => {
      const a = h('a', {class: 'tab', id: `tab-${tab}`}, TAB_LABELS[tab]);
      return [tab, a];
    }));
    this.historyLink = relativeLink('../../history', {id: 'history-link', class: 'header-link', hidden: true}, 'History');
    this.pauseButton = h('button', {type: 'button', id: 'pause-toggle', class: 'btn', hidden: true});
    this.pauseButton.addEventListener('click', () => this.togglePause());
    this.autoRefresh = h('input', {type: 'checkbox', id: 'auto-refresh', checked: true});
    this.refreshNow = h('button', {type: 'button', class: 'btn small', id: 'refresh-now', title: 'Refresh now'}, '⟳');
    this.lastRefresh = h('span', {class: 'last-refresh muted', id: 'last-refresh'});
    this.leaderNote = h('span', {class: 'leader-note muted', id: 'leader-note', hidden: true});
    this.paused = false;

    root.append(
      h('div', {class: 'brand'}, 'luigid'),
      h('nav', {class: 'tabs', 'aria-label': 'Views'}, [...this.tabLinks.values()]),
      h('div', {class: 'header-right'},
        this.leaderNote,
        this.historyLink,
        this.pauseButton,
        h('label', {class: 'auto-refresh'}, this.autoRefresh, ' Auto-refresh'),
        this.refreshNow,
        this.lastRefresh));
  }

  /** Point each tab at the current state with only the tab changed, and mark the active one. */
  showState(state) {
    for (const [tab, a] of this.tabLinks) {
      a.setAttribute('href', '#' + fragmentFor({...state, tab}));
      if (tab === state.tab) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  /** Fetch the scheduler's pause and history flags; resolve to a function that shows them. */
  async load() {
    const [pause, paused, history, leader] = await Promise.all([
      rpc('is_pause_enabled', {}),
      rpc('is_paused', {}),
      rpc('has_task_history', {}),
      this.loadLeader(),
    ]);
    return () => {
      this.render(Boolean(pause && pause.enabled), Boolean(paused && paused.paused), Boolean(history));
      this.renderLeader(leader);
    };
  }

  /** The /leader answer (null without HA or when it cannot be read). */
  async loadLeader() {
    if (this.noLeaderRoute) return null;
    try {
      const res = await fetch(new URL('../../leader', window.location.href), {cache: 'no-store'});
      this.noLeaderRoute = res.status === 404;  // HA is off: not asked again
      if (res.status !== 200 && res.status !== 503) return null;
      return await res.json();
    } catch (err) {
      return null;
    }
  }

  renderLeader(leader) {
    this.leaderNote.hidden = !leader;
    if (!leader) return;
    if (leader.leader) {
      this.leaderNote.textContent = `Leader: ${leader.node}`;
    } else if (leader.leader_url) {
      this.leaderNote.textContent = `Standby ${leader.node}; the leader is ${leader.leader_node} (${leader.leader_url})`;
    } else {
      this.leaderNote.textContent = `Standby ${leader.node}; no leader reachable: showing this node's copy`;
    }
    this.leaderNote.classList.toggle('standby', !leader.leader);
  }

  render(enabled, paused, history) {
    this.paused = paused;
    this.pauseButton.hidden = !enabled;
    this.pauseButton.textContent = this.paused ? 'Paused — resume scheduling' : 'Pause scheduling';
    this.pauseButton.classList.toggle('paused', this.paused);
    document.body.classList.toggle('scheduler-paused', enabled && this.paused);
    this.historyLink.hidden = !history;
  }

  async togglePause() {
    try {
      await rpc(this.paused ? 'unpause' : 'pause', {});
      notify(this.paused ? 'Scheduler resumed' : 'Scheduler paused');
    } catch (err) {
      notify(err.message, 'error');
    }
    onChanged();
  }

  /** Show when data last arrived; the generation number lets tests wait for a refresh. */
  markRefreshed() {
    const d = new Date();
    this.lastRefresh.textContent = `Updated ${d.toLocaleTimeString()}`;
    this.lastRefresh.dataset.generation = String(Number(this.lastRefresh.dataset.generation || 0) + 1);
  }
}
