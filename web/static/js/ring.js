// RingFlow is the consult's doorbell. A live member invites a waiting one;
// the server sends "call" messages with the state of that call to both of
// them (ringing, accepted, rejected, cancelled, timeout, busy, failed).
// The caller sees a "Calling…" dialog with Cancel, the callee a ringing
// dialog with Accept and Decline; every ending gets a plain message.

import { $, toast } from './ui.js';
import { Ringer } from './sound.js';

const FAILED_REASONS = {
  'room-full': 'the consultation is full',
};

export class RingFlow {
  #incoming = new Ringer('incoming');
  #outgoing = new Ringer('outgoing');
  #outTo = ''; // callee I am ringing (one at a time in the dialog)
  #cancelling = false; // I pressed Cancel: no message when it ends
  #title = '';

  constructor({ signal, roster, people, onAccepted }) {
    this.signal = signal;
    this.roster = roster;
    this.people = people;
    this.onAccepted = onAccepted;
    this.out = $('ring-out');
    this.in = $('ring-in');
    $('ring-cancel').addEventListener('click', () => this.cancel(this.#outTo));
    $('ring-accept').addEventListener('click', () => this.#answer('accept'));
    $('ring-reject').addEventListener('click', () => this.#answer('reject'));
    // Escape on a ringing call means "not now" for the callee, "stop" for
    // the caller, as the visible buttons do.
    this.in.addEventListener('cancel', (ev) => { ev.preventDefault(); this.#answer('reject'); });
    this.out.addEventListener('cancel', (ev) => { ev.preventDefault(); this.cancel(this.#outTo); });
  }

  setSignal(signal) {
    this.signal = signal;
  }

  call(id) {
    if (!this.roster.me.live) return;
    this.signal.send('invite', { participant: id });
  }

  cancel(id) {
    if (!id) return;
    if (id === this.#outTo) this.#cancelling = true;
    this.signal.send('cancel', { participant: id });
  }

  #answer(kind) {
    this.signal.send(kind);
    this.#closeIn();
  }

  // onCall handles one "call" message.
  onCall(c) {
    const me = this.roster.me.id;
    const iCall = c.caller === me;
    // A waiting patient is not told who rings: it is its clinician.
    const other = !iCall && !c.caller ? 'your clinician' : this.roster.name(iCall ? c.callee : c.caller);
    switch (c.state) {
      case 'ringing':
        if (iCall) this.#openOut(c.callee, other);
        else if (c.callee === me) this.#openIn(other);
        return;
      case 'accepted':
        this.#end(c);
        if (c.callee === me) this.onAccepted();
        else if (iCall) toast(`${other} joined the consultation`, { tone: 'ok' });
        return;
      case 'rejected':
        this.#end(c);
        if (iCall) toast(`${other} declined the call`, { tone: 'warn' });
        return;
      case 'cancelled':
        this.#end(c);
        if (c.callee === me) toast(`${cap(other)} cancelled the call`);
        else if (iCall && !this.#cancelling) toast(`The call to ${other} ended before it was answered`, { tone: 'warn' });
        return;
      case 'timeout':
        this.#end(c);
        if (iCall) toast(`No answer from ${other}`, { tone: 'warn' });
        else toast(`You missed a call from ${other}`, { tone: 'warn' });
        return;
      case 'busy':
        if (iCall) toast(`${other} is already being called by someone else`, { tone: 'warn' });
        return;
      case 'failed': {
        this.#end(c);
        const why = FAILED_REASONS[c.reason] || c.reason || 'something went wrong';
        toast(`The call could not start: ${why}`, { tone: 'error' });
        return;
      }
      default:
        console.debug('unknown call state', c.state);
    }
  }

  #openOut(callee, name) {
    this.#outTo = callee;
    this.people.setCalling(callee, true);
    $('ring-out-title').textContent = `Calling ${name}…`;
    this.#cancelling = false;
    if (!this.out.open) this.out.showModal();
    this.#outgoing.start();
  }

  #openIn(name) {
    $('ring-in-title').textContent = `${cap(name)} is calling you`;
    $('ring-in-text').textContent = 'You are being let into the consultation.';
    if (!this.in.open) this.in.showModal();
    $('ring-accept').focus();
    this.#incoming.start();
    this.#flashTitle(`Incoming call from ${name}`);
  }

  #end(c) {
    this.people.setCalling(c.callee, false);
    if (c.caller === this.roster.me.id && c.callee === this.#outTo) this.#closeOut();
    if (c.callee === this.roster.me.id) this.#closeIn();
  }

  #closeOut() {
    this.#outTo = '';
    this.#outgoing.stop();
    if (this.out.open) this.out.close();
  }

  #closeIn() {
    this.#incoming.stop();
    this.#flashTitle('');
    if (this.in.open) this.in.close();
  }

  // reset forgets every call (the socket dropped: the server ended them).
  reset() {
    this.people.calling.clear();
    this.#closeOut();
    this.#closeIn();
  }

  // #flashTitle makes a background tab show that it is ringing.
  #flashTitle(text) {
    clearInterval(this.flash);
    if (this.#title) document.title = this.#title;
    this.#title = '';
    if (!text) return;
    this.#title = document.title;
    let on = false;
    this.flash = setInterval(() => {
      on = !on;
      document.title = on ? text : this.#title;
    }, 1000);
  }
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
