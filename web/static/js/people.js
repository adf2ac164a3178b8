// People is the member list: who is in the call, who is in the waiting
// room, and (when I am live) a Call button for each waiting person. The
// People button shows how many are waiting, since that is what a
// clinician needs to notice.

import { $, h, icon, initials, hueFor, toast } from './ui.js';

export class People {
  calling = new Set(); // callee ids I am ringing right now

  constructor(roster, { onCall, onCancel }) {
    this.roster = roster;
    this.onCall = onCall;
    this.onCancel = onCancel;
    this.panel = $('people');
    this.list = $('people-list');
    this.button = $('btn-people');
    this.button.addEventListener('click', () => this.toggle());
    $('people-close').addEventListener('click', () => this.toggle(false));
    this.panel.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') this.toggle(false);
    });
    roster.on('change', (c) => {
      this.render();
      if (c.kind === 'joined' && !c.participant.live && roster.me.live) this.#announceWaiting(c.participant);
      if (c.kind === 'updated' && c.before?.live && !c.participant.live && roster.me.live) this.#announceWaiting(c.participant);
    });
  }

  get open() {
    return !this.panel.hidden;
  }

  toggle(open = !this.open) {
    this.panel.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    this.button.classList.toggle('active', open);
    if (open) this.panel.querySelector('button')?.focus();
    else if (this.panel.contains(document.activeElement)) this.button.focus();
    window.dispatchEvent(new Event('resize')); // the stage changed size
  }

  #announceWaiting(p) {
    toast(`${p.name} is in the waiting room`, {
      action: { label: 'Call', run: () => this.onCall(p.id) },
      timeout: 10000,
    });
  }

  setCalling(id, on) {
    if (on) this.calling.add(id);
    else this.calling.delete(id);
    this.render();
  }

  render() {
    const me = this.roster.me;
    const people = this.roster.list().sort((a, b) => (b.live - a.live) || a.name.localeCompare(b.name));
    const items = [this.#item({ id: me.id || 'me', name: me.name, live: me.live }, true)];
    for (const p of people) items.push(this.#item(p, false));
    // Redrawing must not lose a keyboard user's place in the list.
    const focused = this.list.contains(document.activeElement)
      ? document.activeElement.closest('li')?.dataset.pid : null;
    this.list.replaceChildren(...items);
    if (focused) {
      const li = [...this.list.children].find((el) => el.dataset.pid === focused);
      (li?.querySelector('button') || this.panel.querySelector('button'))?.focus();
    }
    const waiting = this.roster.waiting().length;
    const badge = $('people-badge');
    badge.hidden = waiting === 0;
    badge.textContent = String(waiting);
    this.button.setAttribute('aria-label', waiting ? `People, ${waiting} waiting` : 'People');
  }

  #item(p, isMe) {
    const ringing = this.calling.has(p.id);
    const status = ringing ? 'Ringing…' : p.live ? 'In the call' : 'Waiting';
    const av = h('span', { class: 'avatar sm', 'aria-hidden': 'true' }, initials(p.name));
    av.style.setProperty('--hue', hueFor(p.id));
    const marks = h('span', { class: 'marks' });
    if (p.live && p.audioMuted) marks.append(h('span', { class: 'mark', title: 'Microphone off' }, icon('mic-off')));
    if (p.live && p.videoMuted) marks.append(h('span', { class: 'mark', title: 'Camera off' }, icon('cam-off')));
    let action = null;
    if (!isMe && this.roster.me.live && !p.live) {
      action = ringing
        ? h('button', { class: 'pill danger', type: 'button', 'aria-label': `Cancel calling ${p.name}`, onclick: () => this.onCancel(p.id) }, 'Cancel')
        : h('button', { class: 'pill call', type: 'button', 'aria-label': `Call ${p.name}`, onclick: () => this.onCall(p.id) },
          icon('phone'), 'Call');
    }
    return h('li', { class: `person ${p.live ? 'is-live' : 'is-waiting'}`, 'data-pid': p.id },
      av,
      h('span', { class: 'who' },
        h('span', { class: 'pname' }, isMe ? `${p.name} (you)` : p.name),
        h('span', { class: 'pstatus' }, status)),
      marks, action);
  }
}
