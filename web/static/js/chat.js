// Chat is the room's messages (docs/protocol.md, "Chat"): a panel beside
// the call, and on the waiting screen a short conversation with the
// clinic. The server decides who reads what; this page shows what it is
// sent. Messages are shown as text: only http(s) links become links, and
// nothing else in a message is interpreted. A message from someone else
// while the panel is closed counts on the Chat button and plays a chime.

import { $, h } from './ui.js';
import { chime } from './sound.js';

const LINK = /(https?:\/\/[^\s<>"']+)/;

// linkified turns text into nodes: text, and links for http(s) URLs.
export function linkified(text) {
  const out = [];
  text.split(LINK).forEach((part, i) => {
    if (!part) return;
    let url = null;
    if (i % 2 === 1) {
      try {
        url = new URL(part);
      } catch { /* not a URL after all: text */ }
    }
    if (url && (url.protocol === 'http:' || url.protocol === 'https:')) {
      out.push(h('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer' }, part));
    } else {
      out.push(document.createTextNode(part));
    }
  });
  return out;
}

const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

export class Chat {
  #messages = new Map(); // id → message
  #unread = 0;
  #toName = new Map(); // names of those a clinician chose to write to
  #sent = null; // {input, text}: the last message sent, put back if refused

  constructor(roster, { send }) {
    this.roster = roster;
    this.send = send;
    this.panel = $('chat');
    this.button = $('btn-chat');
    this.badge = $('chat-badge');
    this.to = $('chat-to');
    this.button.addEventListener('click', () => this.toggle());
    $('chat-close').addEventListener('click', () => this.toggle(false));
    this.panel.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.toggle(false); });
    $('chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#submit($('chat-input'), this.to.value, $('chat-error'));
    });
    $('chat-input').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        $('chat-form').requestSubmit();
      }
    });
    $('waiting-chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#submit($('waiting-chat-input'), '', $('waiting-chat-error'));
    });
    $('chat-export').addEventListener('click', () => this.#export());
    roster.on('change', () => this.#renderTo());
  }

  get open() {
    return !this.panel.hidden;
  }

  get #host() {
    return this.roster.me.role === 'host';
  }

  toggle(open = !this.open) {
    this.panel.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    this.button.classList.toggle('active', open);
    if (open) {
      this.#unread = 0;
      this.#renderBadge();
      $('chat-input').focus();
      this.#scroll($('chat-list'));
    } else if (this.panel.contains(document.activeElement)) {
      this.button.focus();
    }
    window.dispatchEvent(new Event('resize')); // the stage changed size
  }

  // reset starts over with a joined message's history.
  reset(messages = []) {
    this.#messages.clear();
    this.#unread = 0;
    $('chat-export').hidden = !this.#host;
    for (const m of messages) this.#messages.set(m.id, m);
    this.#render();
  }

  add(m) {
    if (!m?.id || this.#messages.has(m.id)) return;
    this.#messages.set(m.id, m);
    const mine = m.from === this.roster.me.id;
    if (!mine) {
      const waiting = $('room-view').dataset.state === 'waiting';
      if (!this.open && !waiting) this.#unread++;
      if (!this.open || document.hidden) chime('message');
    }
    this.#render();
  }

  // error shows why the server refused the last message, and puts its
  // text back so that it can be sent again.
  error(text) {
    $('chat-error').textContent = text;
    $('waiting-chat-error').textContent = text;
    if (this.#sent && !this.#sent.input.value) this.#sent.input.value = this.#sent.text;
  }

  #submit(input, to, errorLine) {
    const text = input.value.trim();
    if (!text) return;
    errorLine.textContent = '';
    if (to && !this.roster.people.has(to)) {
      // Never fall back to everyone: a note meant for one patient must
      // not reach the call.
      errorLine.textContent = 'That person has left. Choose who to write to.';
      return;
    }
    if (!this.send('chat', to ? { text, to } : { text })) {
      errorLine.textContent = 'Not connected: the message was not sent.';
      return;
    }
    this.#sent = { input, text };
    input.value = '';
  }

  // #ordered is the messages by time sent (history and live ones merged).
  #ordered() {
    return [...this.#messages.values()].sort((a, b) => a.at - b.at);
  }

  #item(m) {
    const me = this.roster.me.id;
    let to = '';
    if (m.to === 'hosts') to = m.from === me ? ' to the clinic' : ' to the clinicians';
    else if (m.to) to = m.to === me ? ' to you' : ` to ${this.roster.name(m.to)}`;
    return h('li', { class: 'chat-msg', 'data-mine': String(m.from === me), 'data-private': String(!!m.to), 'data-id': m.id },
      h('div', { class: 'chat-meta' },
        h('span', { class: 'chat-from' }, m.from === me ? 'You' : m.fromName),
        m.fromRole === 'host' ? h('span', { class: 'chat-role' }, 'Clinician') : null,
        h('span', { class: 'chat-to-who' }, to),
        h('time', { datetime: new Date(m.at).toISOString() }, time(m.at))),
      h('p', { class: 'chat-text' }, linkified(m.text)));
  }

  #render() {
    const all = this.#ordered();
    $('chat-list').replaceChildren(...all.map((m) => this.#item(m)));
    // The waiting screen shows the conversation with the clinic.
    const me = this.roster.me.id;
    const mine = all.filter((m) => m.to || m.from === me);
    $('waiting-chat-list').replaceChildren(...mine.map((m) => this.#item(m)));
    $('waiting-chat-empty').hidden = mine.length > 0;
    this.#scroll($('chat-list'));
    this.#scroll($('waiting-chat-list'));
    this.#renderBadge();
    this.#renderTo();
  }

  #scroll(list) {
    list.scrollTop = list.scrollHeight;
  }

  #renderBadge() {
    this.badge.hidden = this.#unread === 0;
    this.badge.textContent = String(this.#unread);
    this.button.setAttribute('aria-label', this.#unread ? `Chat, ${this.#unread} unread` : 'Chat');
  }

  // #renderTo lets a clinician write to one person, such as a patient in
  // the waiting room.
  #renderTo() {
    $('chat-to-field').hidden = !this.#host;
    if (!this.#host) return;
    const keep = this.to.value;
    const opts = [h('option', { value: '' }, 'Everyone in the call')];
    for (const p of this.roster.list()) {
      this.#toName.set(p.id, p.name);
      opts.push(h('option', { value: p.id }, p.live ? p.name : `${p.name} (waiting)`));
    }
    if (keep && !this.roster.people.has(keep)) {
      // The chosen person left: say so, and keep the choice (Send refuses).
      opts.push(h('option', { value: keep }, `${this.#toName.get(keep) || 'Someone'} (left)`));
    }
    this.to.replaceChildren(...opts);
    this.to.value = keep;
  }

  // #export saves the messages this page holds (a clinician holds them
  // all) as JSON, for the consult's record.
  #export() {
    const body = JSON.stringify({ room: $('room-title').textContent, exported: Date.now(),
      messages: this.#ordered() }, null, 2);
    const a = h('a', { href: URL.createObjectURL(new Blob([body], { type: 'application/json' })),
      download: `chat-${$('room-title').textContent || 'consult'}.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
}
