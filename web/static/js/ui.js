// Small DOM helpers. Everything a person typed (names, room names) reaches
// the page through text nodes, never through HTML parsing, so a display
// name like "<img onerror=...>" stays a harmless string.

export const $ = (id) => document.getElementById(id);

// h builds an element: h('li', {class: 'x', 'aria-label': 'y'}, 'text', child).
// Strings become text nodes; on* props become listeners.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

// icon returns an <svg> that shows one symbol of the page's sprite.
export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', `icon ${cls}`.trim());
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

// initials are the first letters (or digits) of a name's first and last
// words, skipping punctuation: "Alex (daughter)" is "AD", not "A(".
export function initials(name) {
  const firstOf = (w) => w.match(/[\p{L}\p{N}]/u)?.[0] || '';
  const parts = String(name || '').trim().split(/\s+/).map(firstOf).filter(Boolean);
  if (!parts.length) return '?';
  return (parts[0] + (parts.length > 1 ? parts[parts.length - 1] : '')).toUpperCase();
}

// hueFor gives each participant a stable, calm avatar colour.
export function hueFor(id) {
  let x = 0;
  for (const ch of String(id)) x = (x * 31 + ch.charCodeAt(0)) >>> 0;
  return 170 + (x % 140); // teal through violet; no alarming reds
}

// toast shows a short message; tone is info, ok, warn or error. An action
// {label, run} adds a button. Messages are also read out (aria-live).
export function toast(text, { tone = 'info', action, timeout = 6000 } = {}) {
  const box = $('toasts');
  const el = h('div', { class: `toast ${tone}`, role: tone === 'error' ? 'alert' : 'status' },
    h('span', {}, text));
  if (action) {
    el.append(h('button', {
      class: 'link', type: 'button',
      onclick: () => { action.run(); el.remove(); },
    }, action.label));
  }
  el.append(h('button', {
    class: 'icon-btn', type: 'button', 'aria-label': 'Dismiss', onclick: () => el.remove(),
  }, icon('close')));
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (timeout) setTimeout(() => el.remove(), timeout);
  return el;
}

// setPressed keeps a toggle button's state, label and look in step.
export function setPressed(btn, pressed, label) {
  btn.setAttribute('aria-pressed', String(pressed));
  if (label) btn.setAttribute('aria-label', label);
}

// Emitter is a minimal event hub for the client's own objects.
export class Emitter {
  #handlers = new Map();
  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return () => this.#handlers.get(type)?.delete(fn);
  }
  emit(type, ...args) {
    for (const fn of this.#handlers.get(type) || []) {
      try { fn(...args); } catch (err) { console.error(`handler for ${type}`, err); }
    }
  }
}

// copyText copies to the clipboard; it reports whether that worked, since
// the clipboard API is missing outside secure contexts.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
