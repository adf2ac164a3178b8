// Tile is one person in the call grid: their video, or an avatar while
// their camera is off or no picture arrives, with their name, a muted
// microphone mark, a ring while they speak, the server's mark of their
// connection and a pin button. A shared screen has a tile of its own
// (screen: true). State is mirrored in data-* attributes, which the style
// sheet (and the browser tests) read.

import { h, icon, initials, hueFor } from './ui.js';

export class Tile {
  #stream = new MediaStream();
  #tracks = []; // received tracks, oldest first (remote tiles)
  #name = '';

  constructor({ id, name, local = false, screen = false }) {
    this.id = id;
    this.local = local;
    this.screen = screen;
    this.video = h('video', { autoplay: true, playsinline: true, class: local && !screen ? 'mirror' : '' });
    // The local tile must never play our own microphone back to us.
    this.video.muted = local;
    this.avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
    this.avatar.style.setProperty('--hue', hueFor(id));
    this.nameEl = h('span', { class: 'name' });
    this.net = h('span', { class: 'tile-net net', 'data-quality': 'unknown', role: 'img', hidden: true },
      h('span'), h('span'), h('span'));
    this.pinBtn = local ? null : h('button', { class: 'tile-pin', type: 'button', 'aria-pressed': 'false' }, icon('pin'));
    this.pinBtn?.addEventListener('click', () => {
      this.el.dispatchEvent(new CustomEvent('tile-pin', { bubbles: true, detail: { key: this.id } }));
    });
    this.el = h('article', {
      class: 'tile', 'data-pid': id, 'data-remote': local || screen ? null : 'true', 'data-local': local && !screen ? 'true' : null,
      'data-screen': screen ? 'true' : null, 'data-fit': screen ? 'contain' : null,
    },
      this.video,
      h('div', { class: 'tile-off' }, this.avatar),
      h('div', { class: 'tile-label' },
        icon('mic-off', 'mark-mic'), icon('cam-off', 'mark-cam'), this.nameEl),
      h('span', { class: 'tile-share' }, icon('screen'), 'Presenting'),
      h('span', { class: 'tile-away', role: 'status' }, 'Reconnecting…'),
      h('span', { class: 'tile-paused', role: 'status' }, 'Video paused: poor connection'),
      h('div', { class: 'tile-tools' }, this.net, this.pinBtn));
    this.video.addEventListener('resize', () => this.#fit());
    // The first picture of each remote tile, for time-to-first-frame.
    if (!local) this.video.addEventListener('loadeddata', () => performance.mark(`consult:first-frame:${id}`), { once: true });
    this.setName(name);
    this.#refreshVideo();
  }

  // setReconnecting marks someone whose connection is down for now: the
  // server keeps their place while they come back.
  setReconnecting(on) {
    if ((this.el.dataset.reconnecting === 'true') !== !!on) this.el.dataset.reconnecting = String(!!on);
  }

  // setVideoPaused marks a picture the server stopped sending to us
  // because our connection cannot carry it (their sound goes on); the
  // server sends it again by itself when the connection allows.
  setVideoPaused(on) {
    if ((this.el.dataset.videoPaused === 'true') === !!on) return;
    this.el.dataset.videoPaused = String(!!on);
    this.#refreshVideo();
  }

  // setRole marks a clinician's tile, from the server's word.
  setRole(role) {
    const host = role === 'host' && !this.local;
    if (host === !!this.roleEl) return;
    if (host) {
      this.roleEl = h('span', { class: 'role-mark' }, 'Clinician');
      this.nameEl.after(this.roleEl);
    } else {
      this.roleEl.remove();
      this.roleEl = null;
    }
  }

  setName(name) {
    if (name === this.#name) return;
    this.#name = name;
    const shown = this.local && !this.screen ? 'You' : name;
    this.nameEl.textContent = shown;
    this.avatar.textContent = initials(name);
    this.el.setAttribute('aria-label', shown);
    this.#pinLabel();
  }

  // setMain marks the tile on the main stage; setPinned, one the person
  // pinned there.
  setMain(on) {
    if (this.el.dataset.main !== String(on)) this.el.dataset.main = String(on);
  }

  setPinned(on) {
    if (!this.pinBtn || this.el.dataset.pinned === String(on)) return;
    this.el.dataset.pinned = String(on);
    this.pinBtn.setAttribute('aria-pressed', String(on));
    this.#pinLabel();
  }

  #pinLabel() {
    if (!this.pinBtn) return;
    const on = this.el.dataset.pinned === 'true';
    const label = `${on ? 'Unpin' : 'Pin'} ${this.#name}`;
    this.pinBtn.setAttribute('aria-label', label);
    this.pinBtn.title = label;
  }

  // place puts the tile at a rectangle of the focus layout; null hands it
  // back to the grid's flow.
  place(r) {
    const s = this.el.style;
    if (!r) {
      for (const k of ['left', 'top', 'width', 'height']) s.removeProperty(k);
      return;
    }
    s.left = `${r.x}px`;
    s.top = `${r.y}px`;
    s.width = `${r.w}px`;
    s.height = `${r.h}px`;
  }

  // setQuality shows the server's view of this person's connection
  // ({level, path, lossPct, jitterMs, rttMs, downKbps}; null hides the mark), with
  // the words for it in a tooltip.
  setQuality(q) {
    this.net.hidden = !q;
    if (!q) return;
    this.net.dataset.quality = q.level;
    const words = describeQuality(q, this.local && !this.screen);
    this.net.setAttribute('aria-label', words);
    this.net.title = words;
  }

  setMuted({ audio, video }) {
    this.el.dataset.audioMuted = String(!!audio);
    this.el.dataset.videoMuted = String(!!video);
    this.#refreshVideo();
  }

  setSpeaking(on) {
    if ((this.el.dataset.speaking === 'true') !== on) this.el.dataset.speaking = String(on);
  }

  // setSharing marks a presenter's own tile ("Presenting"); their screen
  // is on a tile of its own.
  setSharing(on) {
    if ((this.el.dataset.sharing === 'true') !== !!on) this.el.dataset.sharing = String(!!on);
  }

  // addTrack offers a received track. A tile may hold several tracks of a
  // kind for a moment, while the media path changes (direct ↔ server):
  // it shows the newest one that carries media, so the old picture stays
  // until the new one moves (make-before-break on screen too).
  addTrack(track) {
    if (this.#tracks.includes(track)) return;
    this.#tracks.push(track);
    // A remote track is muted while no packets arrive (publisher's camera
    // off, or the picture not started yet): show the avatar meanwhile.
    track.addEventListener('mute', () => {
      this.#mutedAt.set(track, performance.now());
      this.#choose();
    });
    track.addEventListener('unmute', () => this.#choose());
    track.addEventListener('ended', () => this.removeTrack(track.id));
    this.#choose();
    this.play();
  }

  removeTrack(id) {
    // A track taken away while it carried media: a switch away from it
    // counts its gap from now.
    for (const t of this.#tracks) if (t.id === id && !t.muted) this.#removedAt.set(t, performance.now());
    this.#tracks = this.#tracks.filter((t) => t.id !== id);
    this.#choose();
  }

  // #choose puts in the stream, per kind, the newest live track that
  // carries media, or else the newest live one.
  #choose() {
    for (const kind of ['audio', 'video']) {
      const live = this.#tracks.filter((t) => t.kind === kind && t.readyState === 'live');
      const pick = live.findLast((t) => !t.muted) || live[live.length - 1] || null;
      const have = this.#stream.getTracks().find((t) => t.kind === kind) || null;
      if (pick === have) continue;
      if (have) this.#stream.removeTrack(have);
      if (pick) this.#stream.addTrack(pick);
      if (kind === 'video' && have && pick) this.#measureGap(have, pick);
    }
    this.#tracks = this.#tracks.filter((t) => t.readyState === 'live');
    this.#refreshVideo();
  }

  // #measureGap times how long the picture stood still when one video
  // track replaced another: from the old track's last moment with media
  // (now, or when it went quiet) to the first frame of the new one. The
  // tile reports it as a 'video-switch' event; the app decides whether it
  // was a change of media path.
  #measureGap(from, to) {
    if (this.screen) return; // the path switch is measured on the camera
    // The old picture was moving until now, or until its track was taken
    // away, or until its packets stopped while the camera was on (the old
    // path closed first). If the camera was turned off, there is no gap
    // to speak of.
    let stopped = from.readyState === 'live' && !from.muted && this.#tracks.includes(from)
      ? performance.now() : this.#removedAt.get(from);
    if (stopped === undefined && this.el.dataset.videoMuted !== 'true') stopped = this.#mutedAt.get(from);
    if (stopped === undefined) return;
    const base = this.video.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
    const started = performance.now();
    const poll = () => {
      if (this.#stream.getVideoTracks()[0] !== to) return; // replaced again
      const frames = this.video.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
      if (frames > base) {
        const gapMs = Math.max(0, Math.round(performance.now() - stopped));
        this.el.dispatchEvent(new CustomEvent('video-switch', { bubbles: true, detail: { from, to, gapMs } }));
      } else if (performance.now() - started < 10000) {
        setTimeout(poll, 15);
      }
    };
    poll();
  }

  #removedAt = new WeakMap(); // track -> when it was taken away while it carried media
  #mutedAt = new WeakMap(); // track -> when its packets last stopped

  // setLocal shows this browser's own picture; an unchanged track is left
  // alone, so redraws do not make the video blink.
  setLocal(stream) {
    const want = stream.getVideoTracks()[0] || null;
    const have = this.#stream.getVideoTracks()[0] || null;
    if (want === have) return;
    if (have) this.#stream.removeTrack(have);
    if (want) this.#stream.addTrack(want);
    this.#refreshVideo();
    this.play();
  }

  // play starts playback; if the browser blocks sound without a click,
  // the caller is told so it can offer a button.
  play() {
    if (!this.video.srcObject) return;
    const p = this.video.play();
    if (p) p.catch((err) => {
      if (err.name === 'NotAllowedError') this.el.dispatchEvent(new CustomEvent('autoplay-blocked', { bubbles: true }));
    });
  }

  setSink(id) {
    if (!this.local && this.video.setSinkId) this.video.setSinkId(id || '').catch(() => {});
  }

  #refreshVideo() {
    // An element showing a stream with no tracks never gets metadata, and
    // such an element holds back the document's load event for good.
    const want = this.#stream.getTracks().length ? this.#stream : null;
    if (this.video.srcObject !== want) this.video.srcObject = want;
    const v = this.#stream.getVideoTracks()[0];
    const showing = v && v.readyState === 'live' && !(this.local ? false : v.muted) && this.el.dataset.videoMuted !== 'true'
      && this.el.dataset.videoPaused !== 'true';
    this.el.dataset.video = showing ? 'on' : 'off';
  }

  // #fit crops a picture to fill the tile only when little would be lost
  // (about a tenth on each side at most); a shared screen, or a portrait
  // phone in a landscape tile, is shown whole: cutting off the edge of a
  // document or of a face is worse than a dark margin.
  #fit() {
    const { videoWidth: w, videoHeight: hgt } = this.video;
    const r = this.el.getBoundingClientRect();
    if (!w || !hgt || !r.width || !r.height) return;
    const mismatch = Math.abs(Math.log((w / hgt) / (r.width / r.height)));
    this.el.dataset.fit = this.screen || mismatch > 0.2 ? 'contain' : 'cover';
  }

  refit() {
    this.#fit();
  }

  // view is how this tile shows its picture (views.js): the picture's
  // size on the screen in device pixels, rounded to step (cropped or
  // letterboxed as the tile fits it; the tile's own size before the
  // first frame), and whether any of it can be seen.
  view(pageHidden, step) {
    const r = this.video.getBoundingClientRect();
    const onScreen = r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
      && r.top < window.innerHeight && r.left < window.innerWidth;
    const { videoWidth: vw, videoHeight: vh } = this.video;
    let w = r.width;
    let hgt = r.height;
    if (vw && vh && w && hgt) {
      const scale = this.el.dataset.fit === 'contain' ? Math.min(w / vw, hgt / vh) : Math.max(w / vw, hgt / vh);
      w = vw * scale;
      hgt = vh * scale;
    }
    const px = (x) => Math.min(16384, Math.ceil((x * (window.devicePixelRatio || 1)) / step) * step);
    return { width: px(w), height: px(hgt), visible: !pageHidden && onScreen };
  }

  remove() {
    this.video.srcObject = null;
    this.el.remove();
  }
}

const PATH_WORDS = { direct: 'directly', sfu: 'through the server', relay: 'through a relay' };
const LEVEL_WORDS = {
  good: 'Connection good',
  fair: 'Connection fair: the picture may be less sharp',
  poor: 'Connection poor: the picture may freeze or the sound break up',
  unknown: 'Connection not measured yet',
};

// describeQuality puts a connection's figures in plain words.
export function describeQuality(q, mine = false) {
  const parts = [LEVEL_WORDS[q.level] || LEVEL_WORDS.unknown];
  if (q.path) parts.push(`${mine ? 'you are connected' : 'connected'} ${PATH_WORDS[q.path] || q.path}`);
  if (q.level !== 'unknown') {
    parts.push(`${q.lossPct ?? 0}% of data lost`);
    if (q.rttMs) parts.push(`${q.rttMs} ms delay`);
  }
  // The server's estimate of what reaches this person: what decides the
  // size of the pictures it sends them.
  if (q.downKbps > 0) parts.push(`${mine ? 'you can' : 'can'} receive about ${rateWords(q.downKbps)}`);
  return `${parts.join('; ')}.`;
}

function rateWords(kbps) {
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${kbps} kbit/s`;
}
