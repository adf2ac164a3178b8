// RecordConsent is recording with consent, in the call. A clinician has a
// Record button: it asks the server to record, shows "Asking…" while the
// others are asked (pressing it again withdraws the request), and "Stop"
// while the consultation is recorded. Everyone else answers a request in
// a dialog that says who asks and that nothing is recorded unless all
// agree. The server decides who is recorded; this page only asks and shows.

import { $, toast } from './ui.js';

export class RecordConsent {
  #request = ''; // the request this page was asked to answer
  #asking = false; // this clinician's request waits for answers
  #recording = false;

  constructor(roster, { send }) {
    this.roster = roster;
    this.send = send; // (type, body) => bool
    this.btn = $('btn-record');
    this.btn.addEventListener('click', () => this.#toggle());
    $('consent-accept').addEventListener('click', () => this.#answer(true));
    $('consent-decline').addEventListener('click', () => this.#answer(false));
    // Escape is no answer: the request stays until it is answered or withdrawn.
    $('consent-dialog').addEventListener('cancel', (ev) => ev.preventDefault());
  }

  // joined offers the button to those who may record.
  joined(role, recording) {
    this.btn.hidden = role !== 'host';
    this.#asking = false;
    this.#close();
    this.recording(recording);
  }

  // recording follows the room's recording indicator.
  recording(active) {
    this.#recording = active;
    if (active) this.#asking = false;
    this.#render();
  }

  // request shows (or withdraws) a request to record.
  request(m) {
    if (m.closed) {
      if (m.request === this.#request) this.#close();
      return;
    }
    this.#request = m.request;
    const who = this.roster.get(m.from)?.name || 'Your clinician';
    $('consent-text').textContent = `${who} would like to record this consultation for your medical record. `
      + 'It is recorded only if everyone agrees, and you can still take part if you do not.';
    const dlg = $('consent-dialog');
    if (!dlg.open) dlg.showModal();
    $('consent-title').focus();
  }

  // state is the server's word on this clinician's request.
  state(m) {
    const names = (ids) => (ids || []).map((id) => this.roster.get(id)?.name || 'Someone').join(', ');
    switch (m.state) {
      case 'asking':
        this.#asking = true;
        break;
      case 'declined':
        this.#asking = false;
        toast(`Not recording: ${names(m.declined)} did not agree`, { tone: 'warn', timeout: 10000 });
        break;
      case 'recording':
        this.#asking = false;
        if (m.declined?.length) toast(`${names(m.declined)} chose not to be recorded and is left out of the recording`, { tone: 'warn', timeout: 10000 });
        break;
      case 'failed':
        this.#asking = false;
        toast(`The recording did not start: ${m.error || 'server error'}`, { tone: 'error' });
        break;
      default: // stopped, cancelled
        this.#asking = false;
    }
    this.#render();
  }

  #toggle() {
    const start = !this.#recording && !this.#asking;
    this.send('record', { start });
    if (start) this.#asking = true; // until the server says otherwise
    this.#render();
  }

  #answer(accept) {
    this.send('consent', { request: this.#request, accept });
    this.#close();
  }

  #close() {
    const dlg = $('consent-dialog');
    if (dlg.open) dlg.close();
  }

  #render() {
    const [label, aria] = this.#recording ? ['Stop', 'Stop recording']
      : this.#asking ? ['Asking…', 'Withdraw the request to record'] : ['Record', 'Record the consultation'];
    this.btn.querySelector('.ctl-label').textContent = label;
    this.btn.setAttribute('aria-label', aria);
    this.btn.setAttribute('aria-pressed', String(this.#recording || this.#asking));
  }
}
