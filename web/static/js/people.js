// People is the member list: who is in the call and, for a clinician, who
// is in the waiting room, with what a clinician may do about each (admit
// or ring a waiting person; mute, send back or remove one in the call).
// A patient sees the call's members and no controls: the server never
// tells it about the waiting room. The People button shows how many are
// waiting, since that is what a clinician needs to notice.

import { $, h, icon, initials, hueFor } from './ui.js';

export class People {
  calling = new Set(); // callee ids I am ringing right now

  constructor(roster, { onCall, onCancel, host }) {
    this.roster = roster;
    this.onCall = onCall;
    this.onCancel = onCancel;
    this.host = host; // HostTools
    this.panel = $('people');
    this.list = $('people-list');
    this.button = $('btn-people');
    this.button.addEventListener('click', () => this.toggle());
    $('people-close').addEventListener('click', () => this.toggle(false));
    this.panel.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') this.toggle(false);
    });
    roster.on('change', () => this.render());
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

  setCalling(id, on) {
    if (on) this.calling.add(id);
    else this.calling.delete(id);
    this.render();
  }

  render() {
    const me = this.roster.me;
    const people = this.roster.list().sort((a, b) => (b.live - a.live) || a.name.localeCompare(b.name));
    const items = [this.#item({ id: me.id || 'me', name: me.name, live: me.live, role: me.role }, true)];
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
    const actions = isMe || !this.host.isHost ? null : h('span', { class: 'actions' }, ...this.#actions(p, ringing));
    return h('li', { class: `person ${p.live ? 'is-live' : 'is-waiting'}`, 'data-pid': p.id },
      av,
      h('span', { class: 'who' },
        h('span', { class: 'pname' }, isMe ? `${p.name} (you)` : p.name, roleMark(p.role)),
        h('span', { class: 'pstatus' }, status)),
      marks, actions);
  }

  // #actions are a clinician's buttons for one other person.
  #actions(p, ringing) {
    const btn = (cls, label, aria, run, ...kids) => h('button', { class: `pill ${cls}`, type: 'button', 'aria-label': aria, onclick: run }, ...kids, label);
    const host = this.host;
    if (!p.live) {
      const ring = !this.roster.me.live ? null : ringing
        ? btn('danger', 'Cancel', `Cancel calling ${p.name}`, () => this.onCancel(p.id))
        : btn('quiet', 'Call', `Call ${p.name}`, () => this.onCall(p.id), icon('phone'));
      return [btn('call', 'Admit', `Admit ${p.name}`, () => host.admit(p.id)), ring,
        btn('quiet', 'Remove', `Remove ${p.name}`, () => host.remove(p.id))];
    }
    return [
      p.audioMuted ? null : btn('quiet', 'Mute', `Mute ${p.name}`, () => host.mute(p.id, 'audio')),
      btn('quiet', 'To waiting room', `Send ${p.name} to the waiting room`, () => host.toWaiting(p.id)),
      btn('quiet', 'Remove', `Remove ${p.name}`, () => host.remove(p.id)),
    ];
  }
}

// roleMark labels a clinician, from the role the server gives, so a
// patient who names himself "Dr Lee" does not pass for one.
export function roleMark(role) {
  return role === 'host' ? h('span', { class: 'role-mark' }, 'Clinician') : null;
}
