// Stage is the call area: one tile per live participant, laid out as large
// as the screen allows, with our own picture either in the grid or, in a
// one-to-one consult, as a small picture-in-picture. It maps received
// tracks to people by the participant id the server puts in track ids.

import { $ } from './ui.js';
import { Tile } from './tile.js';
import { participantOf } from './roster.js';
import { LevelMeter } from './sound.js';

const GAP = 10;
const SPEAKING_LEVEL = 0.04; // getStats audioLevel, 0..1 (log scale)
const SPEAKING_HOLD_MS = 700; // keeps the ring from flickering between words

// bestLayout picks the number of columns that shows n pictures biggest in a
// W×H area. Tiles may be anything from portrait 3:4 to 16:9; the score is
// the 16:9 picture (what cameras send) each tile can show whole, so tall
// narrow tiles full of black bars do not win.
export function bestLayout(n, W, H) {
  let best = { cols: 1, w: W, h: H, score: -1 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(n / cols);
    const cw = (W - GAP * (cols - 1)) / cols;
    const ch = (H - GAP * (rows - 1)) / rows;
    if (cw <= 0 || ch <= 0) continue;
    const w = Math.min(cw, ch * 16 / 9);
    const h = Math.min(ch, w / 0.75);
    const picW = Math.min(w, h * 16 / 9);
    const score = picW * picW * 9 / 16 + w * h / 1000; // tie-break: bigger tile
    if (score > best.score) best = { cols, w: Math.floor(w), h: Math.floor(h), score };
  }
  return best;
}

export class Stage {
  tiles = new Map();
  #owner = new Map(); // track id -> participant id
  #spoke = new Map(); // participant id -> last time heard
  #sink = '';
  #meter = new LevelMeter();

  constructor(roster, media) {
    this.roster = roster;
    this.media = media;
    this.grid = $('grid');
    this.stage = $('stage');
    this.local = new Tile({ id: 'local', name: 'You', local: true });
    new ResizeObserver(() => this.layout()).observe(this.stage);
    roster.on('change', () => this.sync());
    media.on('preview', () => this.#showLocal());
    media.on('state', () => this.#showLocal());
    media.on('audio', (t) => this.#meter.setTrack(t));
    setInterval(() => this.#localSpeaking(), 250);
  }

  // sync makes the tiles match the roster: a tile for everyone live.
  sync() {
    const live = this.roster.me.live;
    for (const p of this.roster.list()) {
      if (!live || !p.live) continue;
      const t = this.#tile(p.id);
      t.setName(p.name);
      t.setRole(p.role);
      t.setReconnecting(p.reconnecting);
      t.setMuted({ audio: p.audioMuted, video: p.videoMuted });
    }
    for (const [id, t] of this.tiles) {
      const p = this.roster.get(id);
      if (!live || !p || !p.live) {
        t.remove();
        this.tiles.delete(id);
      }
    }
    this.local.setName(this.roster.me.name || 'You');
    this.#showLocal();
    this.layout();
  }

  #tile(id) {
    let t = this.tiles.get(id);
    if (!t) {
      t = new Tile({ id, name: this.roster.get(id)?.name || 'Joining…' });
      t.setSink(this.#sink);
      this.tiles.set(id, t);
      this.grid.append(t.el);
    }
    return t;
  }

  // addTrack places a received track on its publisher's tile: the owner
  // given (a direct peer's tracks carry no participant id), or the one in
  // the server's track and stream ids.
  addTrack(track, stream, owner = '') {
    const id = owner || participantOf(track, stream);
    if (!id || !this.roster.me.live) return;
    // A direct peer's late track after it left must not bring back a tile.
    if (owner && !this.roster.get(owner)?.live) return;
    this.#owner.set(track.id, id);
    this.#tile(id).addTrack(track);
    this.layout();
  }

  // dropTrack removes a track whose connection closed.
  dropTrack(track) {
    const id = this.#owner.get(track.id);
    if (id) this.removeTrack(id, track.id);
  }

  // videoPaused marks a participant's picture as paused for our poor
  // connection (or not); null clears every mark (the path changed).
  videoPaused(participant, on) {
    if (participant === null) {
      for (const t of this.tiles.values()) t.setVideoPaused(false);
      return;
    }
    this.tiles.get(participant)?.setVideoPaused(on);
  }

  removeTrack(participant, trackId) {
    this.tiles.get(participant)?.removeTrack(trackId);
    this.#owner.delete(trackId);
  }

  // clear drops every remote tile (hang up, reconnect).
  clear() {
    for (const t of this.tiles.values()) t.remove();
    this.tiles.clear();
    this.#owner.clear();
    this.layout();
  }

  setSink(id) {
    this.#sink = id;
    for (const t of this.tiles.values()) t.setSink(id);
  }

  // levels comes from getStats: audio level by received track id.
  levels(byTrack) {
    const now = performance.now();
    for (const [trackId, level] of byTrack) {
      const id = this.#owner.get(trackId);
      if (id && level > SPEAKING_LEVEL) this.#spoke.set(id, now);
    }
    for (const [id, t] of this.tiles) {
      const p = this.roster.get(id);
      t.setSpeaking(!p?.audioMuted && now - (this.#spoke.get(id) || -1e9) < SPEAKING_HOLD_MS);
    }
  }

  #localSpeaking() {
    const now = performance.now();
    if (this.media.micOn && this.#meter.level() > 0.08) this.#spoke.set('local', now);
    this.local.setSpeaking(now - (this.#spoke.get('local') || -1e9) < SPEAKING_HOLD_MS);
    if (this.onLevel) this.onLevel(this.#meter.level());
  }

  #showLocal() {
    const m = this.media;
    this.local.setLocal(m.previewStream());
    this.local.setMuted({ audio: !m.micOn || !m.mic, video: !m.screen && (!m.camOn || !m.cam) });
    this.local.setSharing(!!m.screen);
  }

  // layout sizes the tiles. With exactly one other person our own picture
  // floats in a corner, as people expect from a one-to-one call.
  layout() {
    const live = this.roster.me.live;
    const remotes = [...this.tiles.values()];
    const pip = live && remotes.length === 1;
    const el = this.local.el;
    el.classList.toggle('pip', pip);
    // Move our tile only when needed: each move restarts nothing, but
    // there is no reason to touch a playing video element.
    if (!live) el.remove();
    else if (pip && el.parentNode !== this.stage) this.stage.append(el);
    else if (!pip && this.grid.lastElementChild !== el) this.grid.append(el); // "you" last
    const n = remotes.length + (live && !pip ? 1 : 0);
    $('alone').hidden = !live || remotes.length > 0;
    // On a phone, one other person fills the screen edge to edge.
    this.grid.dataset.solo = String(pip && window.matchMedia('(max-width: 720px)').matches);
    const r = this.grid.getBoundingClientRect();
    if (!n || !r.width || !r.height) return;
    const { w, h } = this.grid.dataset.solo === 'true'
      ? { w: Math.floor(r.width), h: Math.floor(r.height) } : bestLayout(n, r.width, r.height);
    this.grid.style.setProperty('--tile-w', `${w}px`);
    this.grid.style.setProperty('--tile-h', `${h}px`);
    this.grid.dataset.count = String(n);
    for (const t of [...remotes, this.local]) t.refit();
  }
}
