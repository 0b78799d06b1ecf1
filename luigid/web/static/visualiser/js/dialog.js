// Modal panels and short notices. Built on <dialog>, never on window.alert/confirm,
// so the page itself raises no JavaScript dialogs.

import {h} from './dom.js';

let current = null;

/** Open a modal with a title and body nodes; returns {dialog, close, body}. */
export function openDialog(title, bodyNodes, {wide = false} = {}) {
  closeDialog();
  const body = h('div', {class: 'dialog-body'}, bodyNodes);
  const closeButton = h('button', {class: 'dialog-close', type: 'button', 'aria-label': 'Close'}, '×');
  const dialog = h('dialog', {class: wide ? 'panel wide' : 'panel', 'aria-label': title},
    h('header', {class: 'dialog-head'}, h('h2', null, title), closeButton),
    body);
  closeButton.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (current && current.dialog === dialog) current = null;
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  current = {dialog, body, close: () => dialog.close()};
  return current;
}

export function closeDialog() {
  if (current) current.close();
}

/** Ask before a consequential action; resolves true when confirmed. */
export function confirmDialog(title, message, confirmLabel) {
  return new Promise((resolve) => {
    let answered = false;
    const yes = h('button', {class: 'btn danger', type: 'button'}, confirmLabel);
    const no = h('button', {class: 'btn', type: 'button'}, 'Cancel');
    const {dialog} = openDialog(title, [h('p', null, message), h('div', {class: 'dialog-actions'}, no, yes)]);
    yes.addEventListener('click', () => { answered = true; resolve(true); dialog.close(); });
    no.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => { if (!answered) resolve(false); });
    yes.focus();
  });
}

/** A transient notice in the corner; kind is 'ok' or 'error'. */
export function notify(message, kind = 'ok') {
  const area = document.getElementById('notices');
  if (!area) return;
  const note = h('div', {class: `notice ${kind === 'error' ? 'error' : 'ok'}`, role: 'status'}, message);
  area.appendChild(note);
  setTimeout(() => note.remove(), kind === 'error' ? 8000 : 4000);
}
