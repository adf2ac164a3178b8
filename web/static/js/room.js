// RoomView is the frame around the stage: the top bar (room, connection,
// network quality, invite), the banner for reconnects and blocked sound,
// and the waiting-room card.

import { $ } from './ui.js';
import { copyInvite } from './lobby.js';

const CONNECTION_WORDS = {
  new: 'Connecting…',
  connecting: 'Connecting…',
  connected: 'Connected',
  disconnected: 'Connection unstable…',
  failed: 'Connection lost',
  closed: 'Disconnected',
  waiting: 'Waiting room',
  reconnecting: 'Reconnecting…',
};

const QUALITY_WORDS = { good: 'good', fair: 'fair', poor: 'poor', unknown: 'unknown' };

export class RoomView {
  #room = '';
  #token = '';
  #role = 'host';

  constructor({ media, onRejoin, onLeave }) {
    this.media = media;
    const copy = () => this.copyInvite();
    $('copy-invite-room').addEventListener('click', copy);
    $('alone-invite').addEventListener('click', copy);
    $('rejoin').addEventListener('click', () => onRejoin());
    $('leave-waiting').addEventListener('click', () => onLeave());
    media.on('preview', () => this.#waitingPreview());
    // A browser may refuse to play sound before the first click; offer
    // the click rather than leaving the call silent.
    $('stage').addEventListener('autoplay-blocked', () => {
      this.banner('Your browser paused the sound of the call.', {
        label: 'Turn on sound',
        run: () => {
          for (const v of document.querySelectorAll('.tile[data-remote] video')) v.play().catch(() => {});
          this.banner(null);
        },
      });
    });
  }

  // show opens the room view; role decides what this person is offered
  // (guests invite nobody), token pays for invite links.
  show(room, { role = 'host', token = '' } = {}) {
    this.#room = room;
    this.#role = role;
    this.#token = token;
    $('copy-invite-room').hidden = role !== 'host';
    $('alone-invite').hidden = role !== 'host';
    // Alone in the call, a patient is waiting for the clinician, not
    // hosting anyone.
    $('alone-title').textContent = role === 'host' ? "You're the first one here" : 'Your clinician will be with you';
    $('alone-text').textContent = role === 'host'
      ? 'Others appear here as soon as they join. Send them the invite link.'
      : 'Please stay on this page. The consultation goes on as soon as your clinician is back.';
    $('room-title').textContent = room;
    document.title = `${room} · Consult`;
    $('room-view').hidden = false;
  }

  hide() {
    $('room-view').hidden = true;
    document.title = 'Consult';
  }

  async copyInvite() {
    await copyInvite(this.#room, this.#token);
  }

  // waiting shows the waiting-room card. A patient is told the clinician
  // knows it is there, and nothing about anyone else; a clinician who
  // stepped out may rejoin by itself.
  waiting(hungUp, why = '') {
    const host = this.#role === 'host';
    $('waiting-title').textContent = why === 'moved' ? 'You are back in the waiting room'
      : hungUp ? 'You left the call' : "You're in the waiting room";
    $('waiting-text').textContent = !host
      ? 'Your clinician has been told you are here. Please keep this page open: you will join the consultation as soon as they let you in. Nobody can see or hear you until then.'
      : hungUp ? 'You are still in the room and can rejoin the call.'
        : 'Nobody can see or hear you yet. Join the call when you are ready.';
    $('rejoin').hidden = !host;
    this.connection('waiting');
    this.#waitingPreview();
  }

  #waitingPreview() {
    const v = $('waiting-video');
    const s = this.media.previewStream();
    const t = s.getVideoTracks()[0];
    if (v.srcObject?.getVideoTracks()[0] !== t) v.srcObject = t ? s : null;
    v.parentElement.dataset.video = t ? 'on' : 'off';
  }

  connection(state) {
    const el = $('conn-status');
    el.dataset.state = state;
    el.textContent = CONNECTION_WORDS[state] || state;
  }

  // quality shows the network indicator; null hides it (not live).
  quality(q) {
    const el = $('net');
    el.hidden = !q;
    if (!q) return;
    el.dataset.quality = q.level;
    const parts = [];
    if (q.rtt != null) parts.push(`${Math.round(q.rtt * 1000)} ms round trip`);
    if (q.loss != null) parts.push(`${(q.loss * 100).toFixed(1)}% loss`);
    const text = `Network ${QUALITY_WORDS[q.level]}${parts.length ? `: ${parts.join(', ')}` : ''}`;
    el.setAttribute('aria-label', text);
    el.title = text;
  }

  // recording shows or hides the recording indicator.
  recording(active) {
    $('rec').hidden = !active;
  }

  // banner shows a persistent notice (null hides it) with an optional
  // action button {label, run}.
  banner(text, action) {
    const b = $('banner');
    b.hidden = !text;
    $('banner-text').textContent = text || '';
    const btn = $('banner-action');
    btn.hidden = !action;
    if (action) {
      btn.textContent = action.label;
      btn.onclick = action.run;
    }
  }
}
