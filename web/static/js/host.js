// HostTools is what a clinician has that a patient does not: word that
// someone is waiting (a chime, a toast with "Admit", a count in the tab's
// title, and a card on the stage listing who waits and since when), the
// actions on other people (admit, send back to the waiting room, mute,
// remove), and the choice, on leaving, to end the consultation for
// everyone. The server enforces all of it; this only offers it.

import { $, h, toast } from './ui.js';
import { chime } from './sound.js';

export class HostTools {
  #alerted = new Set(); // ids already announced as waiting
  #tick = null;

  constructor(roster, { send, onLeave, onEnd }) {
    this.roster = roster;
    this.send = send; // (type, body) => bool
    this.onLeave = onLeave;
    this.onEnd = onEnd;
    roster.on('change', () => this.#update());
    const dlg = $('leave-dialog');
    $('leave-cancel').addEventListener('click', () => dlg.close());
    $('leave-only').addEventListener('click', () => { dlg.close(); this.onLeave(); });
    $('leave-end').addEventListener('click', () => { dlg.close(); this.onEnd(); });
  }

  get isHost() {
    return this.roster.me.role === 'host';
  }

  admit(id) { this.send('admit', { participant: id }); }
  toWaiting(id) { this.send('return-to-waiting', { participant: id }); }
  remove(id) { this.send('remove', { participant: id }); }
  mute(id, kind) { this.send('mute', { participant: id, kind, muted: true }); }

  // askLeave offers a clinician the choice between leaving and ending.
  askLeave() {
    $('leave-dialog').showModal();
    $('leave-only').focus();
  }

  waiting() {
    return this.roster.waiting().sort((a, b) => (a.waitingSince || 0) - (b.waitingSince || 0));
  }

  // #update announces anyone who started waiting since last time, and
  // redraws the card and the title.
  #update() {
    const waiting = this.isHost ? this.waiting() : [];
    const ids = new Set(waiting.map((p) => p.id));
    for (const id of this.#alerted) if (!ids.has(id)) this.#alerted.delete(id);
    const fresh = waiting.filter((p) => !this.#alerted.has(p.id));
    for (const p of fresh) this.#alerted.add(p.id);
    if (fresh.length) {
      chime();
      const who = fresh.length === 1 ? `${fresh[0].name} is` : `${fresh.length} people are`;
      toast(`${who} in the waiting room`, {
        tone: 'warn', timeout: 12000,
        action: fresh.length === 1 ? { label: 'Admit', run: () => this.admit(fresh[0].id) } : undefined,
      });
    }
    this.#card(waiting);
    this.#badge(waiting.length);
  }

  #card(waiting) {
    const card = $('waiting-card');
    card.hidden = waiting.length === 0 || !this.roster.me.id;
    clearInterval(this.#tick);
    if (card.hidden) return;
    $('waiting-card-title').textContent = waiting.length === 1
      ? `${waiting[0].name} is in the waiting room` : `${waiting.length} people are in the waiting room`;
    const since = (p) => h('span', { class: 'since', 'data-since': String(p.waitingSince || Date.now()) }, waitedFor(p.waitingSince));
    $('waiting-card-list').replaceChildren(...waiting.map((p) => h('li', { 'data-pid': p.id },
      h('span', { class: 'who' }, h('span', { class: 'pname' }, p.name), since(p)),
      h('button', { class: 'pill call', type: 'button', 'aria-label': `Admit ${p.name}`, onclick: () => this.admit(p.id) }, 'Admit'))));
    this.#tick = setInterval(() => {
      for (const el of document.querySelectorAll('#waiting-card-list .since')) el.textContent = waitedFor(Number(el.dataset.since));
    }, 15000);
  }

  // #badge puts the number waiting in the tab's title, where a clinician
  // working in another tab sees it.
  #badge(n) {
    const base = document.title.replace(/^\(\d+\) /, '');
    document.title = n ? `(${n}) ${base}` : base;
  }
}

// waitedFor words how long someone has waited.
export function waitedFor(since) {
  const mins = Math.floor((Date.now() - (since || Date.now())) / 60000);
  return mins < 1 ? 'waiting since just now' : mins === 1 ? 'waiting 1 minute' : `waiting ${mins} minutes`;
}
