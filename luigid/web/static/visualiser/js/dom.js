// Element building that can only ever produce text from data: strings become Text nodes,
// never markup. Every view builds its DOM through h(), so worker-supplied ids, params,
// errors and messages cannot inject HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
  } else if (child instanceof Node) {
    el.appendChild(child);
  } else {
    el.appendChild(document.createTextNode(String(child)));
  }
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'style' && typeof value === 'object') {
      // CSSOM properties, not a style attribute: allowed by the page's CSP.
      Object.assign(el.style, value);
    } else if (key === 'href') {
      throw new Error('use link() or hashLink() for hrefs');
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

/** h('div', {class: 'x'}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** SVG counterpart of h(). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** A link to another view of this page; the target is always a '#...' fragment. */
export function hashLink(fragment, attrs, ...children) {
  const a = h('a', attrs, ...children);
  a.setAttribute('href', '#' + fragment);
  return a;
}

/** The URL as an absolute http(s) URL, or null for anything else (javascript:, data:, ...). */
export function safeHttpUrl(raw) {
  if (typeof raw !== 'string' || raw.trim() === '') return null;
  let url;
  try {
    url = new URL(raw.trim(), document.baseURI);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

/** An outbound link when the URL is http(s); otherwise the raw text, unlinked. */
export function externalLink(raw, label) {
  const href = safeHttpUrl(raw);
  if (href === null) return h('span', {class: 'unsafe-url', title: 'not an http(s) link'}, String(raw));
  const a = h('a', {target: '_blank', rel: 'noopener noreferrer'}, label || raw);
  a.setAttribute('href', href);
  return a;
}

/** A relative same-site link (e.g. to the task-history pages). */
export function relativeLink(path, attrs, ...children) {
  const a = h('a', attrs, ...children);
  a.setAttribute('href', path);
  return a;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}
