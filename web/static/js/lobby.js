// Lobby is the first screen: name, room, devices and a live preview, who
// is joining (the clinician or a patient: from the invite's token, or
// asked when the server runs without auth), the room's status from GET
// /api/rooms/{room} for a clinician, and the ways in. A clinician joins the
// call now (or waits); a patient asks to join and waits to be let in.

import { $, setPressed, initials, hueFor, toast, copyText } from './ui.js';
import { LevelMeter } from './sound.js';
import { mintInvite, tokenClaims } from './invite.js';

const ROOM_RE = /^[\p{L}\p{N}._-]{1,64}$/u;

export class Lobby {
  #meter = new LevelMeter();
  #statusTimer = null;
  #debounce = null;
  #full = false;

  #token = '';
  #fixedRole = ''; // the role the token gives, if any

  constructor(media, { onJoin, onRetryMedia }) {
    this.media = media;
    this.onJoin = onJoin;
    for (const r of document.querySelectorAll('input[name="role"]')) {
      r.addEventListener('change', () => this.#showRole());
    }
    this.form = $('join-form');
    this.room = $('room');
    this.name = $('name');
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#submit(true);
    });
    $('join-wait').addEventListener('click', () => this.#submit(false));
    $('copy-invite').addEventListener('click', () => this.copyInvite());
    $('lobby-retry').addEventListener('click', () => onRetryMedia());
    $('lobby-mic').addEventListener('click', () => media.setMic(!media.micOn));
    $('lobby-cam').addEventListener('click', async () => {
      const p = await media.setCam(!media.camOn);
      if (p) this.notice(p);
    });
    this.room.addEventListener('input', () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => this.checkRoom(), 300);
    });
    this.name.addEventListener('input', () => this.#showPreview());
    media.on('preview', () => this.#showPreview());
    media.on('state', () => this.#showPreview());
    media.on('audio', (t) => this.#meter.setTrack(t));
  }

  // setInvite applies what the invite link says: a token fixes the role
  // (and maybe the name); without one, a role in the link preselects it.
  setInvite({ token = '', role = '' }) {
    this.#token = token;
    // With a token the server decides who this is; one that cannot be
    // read is most likely a patient's link gone wrong, and will be refused.
    const claims = token ? tokenClaims(token) : null;
    this.#fixedRole = token ? claims?.role || 'guest' : '';
    if (claims?.name) {
      this.name.value = claims.name;
      this.name.readOnly = true;
    }
    const pick = this.#fixedRole || role;
    for (const r of document.querySelectorAll('input[name="role"]')) r.checked = r.value === pick;
    this.#showRole();
  }

  // role is who is joining: the token's role, or the choice made here.
  get role() {
    return this.#fixedRole || document.querySelector('input[name="role"]:checked')?.value || '';
  }

  #showRole() {
    const role = this.role;
    $('role-choice').hidden = !!this.#fixedRole;
    const fixed = $('role-fixed');
    fixed.hidden = !this.#fixedRole;
    fixed.textContent = this.#fixedRole === 'host'
      ? 'You are joining as the clinician.'
      : 'You are joining as a patient or guest. The clinician lets you in.';
    const guest = role === 'guest';
    $('join-live').textContent = guest ? 'Join the consultation' : 'Join now';
    $('join-wait').hidden = guest;
    $('copy-invite').hidden = guest;
    this.checkRoom();
  }

  show(values = {}) {
    if (values.room !== undefined) this.room.value = values.room;
    if (values.name !== undefined && !this.name.readOnly) this.name.value = values.name;
    $('lobby').hidden = false;
    this.checkRoom();
    this.#statusTimer ??= setInterval(() => this.checkRoom(), 8000);
    this.#loop();
    this.#showPreview();
  }

  hide() {
    $('lobby').hidden = true;
    clearInterval(this.#statusTimer);
    this.#statusTimer = null;
  }

  get visible() {
    return !$('lobby').hidden;
  }

  values() {
    return { room: this.room.value.trim(), name: this.name.value.trim().replace(/\s+/g, ' '), role: this.role };
  }

  // validate marks the first wrong field; it returns whether all is well.
  validate() {
    const { room, name, role } = this.values();
    let msg = '';
    let field = null;
    if (!name) [msg, field] = ['Please enter your name, so others know who you are.', this.name];
    else if (!ROOM_RE.test(room)) [msg, field] = ['Room names use letters, digits, "-", "_" and "." (up to 64).', this.room];
    else if (!role) [msg, field] = ['Please say who is joining: the clinician, or a patient.', document.querySelector('input[name="role"]')];
    this.error(msg);
    for (const f of [this.name, this.room]) f.toggleAttribute('aria-invalid', f === field);
    if (field) field.focus();
    return !field;
  }

  error(msg) {
    $('form-error').textContent = msg || '';
  }

  #submit(live) {
    if (!this.validate()) return;
    if (live && this.#full) {
      this.error('The call is full right now. Choose "Wait to be called" to be let in when there is room.');
      return;
    }
    this.onJoin({ ...this.values(), live });
  }

  busy(on) {
    for (const id of ['join-live', 'join-wait']) $(id).disabled = on;
    if (on) $('join-live').textContent = 'Joining…';
    else this.#showRole();
  }

  // notice explains a device problem under the preview ({title, text, code}).
  notice(p) {
    $('lobby-notice').hidden = !p;
    if (!p) return;
    $('lobby-notice').dataset.code = p.code;
    $('lobby-notice-title').textContent = p.title;
    $('lobby-notice-text').textContent = p.text;
    $('lobby-retry').hidden = !['denied', 'busy', 'error'].includes(p.code);
  }

  async checkRoom() {
    const { room } = this.values();
    const out = $('room-status');
    this.#full = false;
    out.dataset.state = '';
    // Who else is there is the clinician's business, not a patient's.
    if (!room || this.role !== 'host') {
      out.textContent = '';
      return;
    }
    if (!ROOM_RE.test(room)) {
      out.textContent = 'Room names use letters, digits, "-", "_" and ".".';
      out.dataset.state = 'bad';
      return;
    }
    try {
      const headers = this.#token ? { Authorization: `Bearer ${this.#token}` } : {};
      const res = await fetch(`/api/rooms/${encodeURIComponent(room)}`, { cache: 'no-store', headers });
      if (!res.ok) throw new Error(String(res.status));
      const s = await res.json();
      if (s.room !== this.values().room) return; // typed on meanwhile
      if (this.role !== 'host') return;
      out.textContent = describeRoom(s);
      this.#full = !!s.full;
      out.dataset.state = s.full ? 'full' : s.exists ? 'busy' : 'empty';
    } catch {
      out.textContent = '';
    }
  }

  async copyInvite() {
    const { room } = this.values();
    if (!ROOM_RE.test(room)) {
      this.validate();
      return;
    }
    await copyInvite(room, this.#token);
  }

  #showPreview() {
    const m = this.media;
    const v = $('preview');
    const stream = m.previewStream();
    const hasVideo = stream.getVideoTracks().length > 0;
    if (v.srcObject?.getVideoTracks()[0] !== stream.getVideoTracks()[0]) v.srcObject = hasVideo ? stream : null;
    $('preview-off').hidden = hasVideo;
    const ini = $('preview-initials');
    ini.textContent = initials(this.values().name || '?');
    ini.style.setProperty('--hue', hueFor(this.values().name));
    $('preview-off-text').textContent = m.camOn && m.status.video !== 'ok' ? 'No camera picture' : 'Your camera is off';
    setPressed($('lobby-mic'), m.micOn, m.micOn ? 'Turn microphone off' : 'Turn microphone on');
    setPressed($('lobby-cam'), m.camOn, m.camOn ? 'Turn camera off' : 'Turn camera on');
    $('lobby-mic').disabled = !m.mic;
    $('lobby-cam').disabled = m.status.video === 'insecure';
  }

  #loop() {
    if (!this.visible) return;
    $('lobby-level').style.setProperty('--level', this.media.micOn ? this.#meter.level().toFixed(3) : '0');
    requestAnimationFrame(() => this.#loop());
  }
}

// describeRoom words the room check for someone about to join.
export function describeRoom(s) {
  if (!s.exists || s.present === 0) return 'Nobody is here yet. You will be the first.';
  const waiting = s.present - s.live;
  const inCall = s.live === 1 ? '1 person is in the call' : `${s.live} people are in the call`;
  const wait = waiting ? `, ${waiting} waiting` : '';
  if (s.full) return `The call is full (${s.live} of ${s.capacity})${wait}. You can wait to be called.`;
  return s.live ? `${inCall}${wait}.` : `${waiting} waiting, nobody in the call yet.`;
}

// copyInvite asks the server for a patient's invite link and copies it.
export async function copyInvite(room, token) {
  let link;
  try {
    link = await mintInvite(room, token);
  } catch (err) {
    toast(`No invite link: ${err.message}`, { tone: 'error' });
    return;
  }
  toast(await copyText(link) ? 'Invite link for a patient copied' : `Invite link: ${link}`, { tone: 'ok' });
}
