// RoomView is the frame around the stage: the top bar (room, connection,
// network quality, invite), the banner for reconnects and blocked sound,
// and the waiting-room card.

import { $, toast, copyText } from './ui.js';
import { inviteLink } from './invite.js';

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

  show(room) {
    this.#room = room;
    $('room-title').textContent = room;
    document.title = `${room} · Consult`;
    $('room-view').hidden = false;
  }

  hide() {
    $('room-view').hidden = true;
    document.title = 'Consult';
  }

  async copyInvite() {
    const link = inviteLink(this.#room);
    toast(await copyText(link) ? 'Invite link copied' : `Invite link: ${link}`, { tone: 'ok' });
  }

  // waiting shows the waiting-room card; after a hang-up it offers to
  // rejoin, since the person chose to leave rather than was never let in.
  waiting(hungUp) {
    $('waiting-title').textContent = hungUp ? 'You left the call' : "You're in the waiting room";
    $('waiting-text').textContent = hungUp
      ? 'You are still in the room and can be called back, or rejoin yourself.'
      : 'Nobody can see or hear you yet. Someone in the consultation will let you in; keep this page open, it will ring.';
    $('rejoin').hidden = !hungUp;
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
