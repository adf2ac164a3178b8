// Stage is the call area: one tile per live participant, laid out as large
// as the screen allows, with our own picture either in the grid or, in a
// one-to-one consult, as a small picture-in-picture. It maps received
// tracks to people by the participant id the server puts in track ids.
//
// Two layouts: the grid, and a focus layout with one tile large (the main
// stage) and the rest in a strip beside or below it. The main stage is,
// in this order: a tile the person pinned, a shared screen (in a tile of
// its own, so the presenter's camera stays in the strip), or in speaker
// view the active speaker. Who speaks comes from the server (speaker
// events) while the call goes through it; on the direct path, where no
// media reaches the server, from this browser's own audio levels.

import { $ } from './ui.js';
import { Tile } from './tile.js';
import { participantOf } from './roster.js';
import { LevelMeter } from './sound.js';

const GAP = 10;
const STRIP_MAX = 220; // the strip's tiles, at most (px, the long side)
const SPEAKING_LEVEL = 0.04; // getStats audioLevel, 0..1 (log scale)
const SPEAKING_HOLD_MS = 700; // keeps the ring from flickering between words
// On our own levels (the direct path), someone becomes the active speaker
// after being the loudest this many reads in a row (500 ms apart), so a
// cough does not take the main stage.
const DOMINANT_READS = 3;

// bestLayout picks the number of columns that shows n pictures biggest in a
// W×H area. Tiles may be anything from portrait 3:4 to 16:9; the score is
// the picture each tile can show whole, so tall narrow tiles full of black
// bars do not win: a 16:9 picture (what laptop cameras send) on a
// landscape screen, a 3:4 one (phones held upright) on a portrait one, so
// four people on a phone get a 2×2 grid rather than one thin column.
export function bestLayout(n, W, H) {
  const aspect = H > W ? 3 / 4 : 16 / 9;
  let best = { cols: 1, w: W, h: H, score: -1 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(n / cols);
    const cw = (W - GAP * (cols - 1)) / cols;
    const ch = (H - GAP * (rows - 1)) / rows;
    if (cw <= 0 || ch <= 0) continue;
    const w = Math.min(cw, ch * 16 / 9);
    const h = Math.min(ch, w / 0.75);
    const picW = Math.min(w, h * aspect);
    const score = picW * picW / aspect + w * h / 1000; // tie-break: bigger tile
    if (score > best.score) best = { cols, w: Math.floor(w), h: Math.floor(h), score };
  }
  return best;
}

// focusLayout places a main tile and a strip of n small ones in W×H: the
// strip to the right on a landscape area, below on a portrait one. It
// returns the rectangles, main first.
export function focusLayout(n, W, H) {
  if (!n) return [{ x: 0, y: 0, w: W, h: H }];
  const side = W > H * 1.2;
  const rects = [];
  if (side) {
    const sw = Math.min(STRIP_MAX, Math.max(96, Math.floor(W * 0.2)));
    const sh = Math.min(Math.floor(sw * 9 / 16), Math.floor((H - GAP * (n - 1)) / n));
    const w = Math.floor(Math.min(sw, sh * 16 / 9));
    rects.push({ x: 0, y: 0, w: W - w - GAP, h: H });
    const top = Math.max(0, Math.floor((H - n * sh - (n - 1) * GAP) / 2));
    for (let i = 0; i < n; i++) rects.push({ x: W - w, y: top + i * (sh + GAP), w, h: sh });
  } else {
    const sh = Math.min(Math.floor(STRIP_MAX * 0.6), Math.max(72, Math.floor(H * 0.18)));
    const sw = Math.min(Math.floor(sh * 4 / 3), Math.floor((W - GAP * (n - 1)) / n));
    rects.push({ x: 0, y: 0, w: W, h: H - sh - GAP });
    const left = Math.max(0, Math.floor((W - n * sw - (n - 1) * GAP) / 2));
    for (let i = 0; i < n; i++) rects.push({ x: left + i * (sw + GAP), y: H - sh, w: sw, h: sh });
  }
  return rects;
}

export class Stage {
  tiles = new Map(); // participant id -> their tile
  screens = new Map(); // participant id -> the tile of their shared screen
  #owner = new Map(); // track id -> participant id
  #spoke = new Map(); // participant id -> last time heard (our own levels)
  #server = null; // {active: Set}: the server's word on who speaks, while it has one
  #sink = '';
  #meter = new LevelMeter();
  view = 'grid'; // or 'speaker'
  pinned = ''; // the key of a pinned tile: a participant id or '<id>:screen'
  dominant = ''; // the active speaker (server or own levels)
  #main = null; // the tile on the main stage now
  #sharedAt = new Map(); // screen tile -> when its share began (the newest takes the stage)

  constructor(roster, media) {
    this.roster = roster;
    this.media = media;
    this.grid = $('grid');
    this.stage = $('stage');
    this.local = new Tile({ id: 'local', name: 'You', local: true });
    this.localScreen = new Tile({ id: 'local:screen', name: 'Your screen', local: true, screen: true });
    new ResizeObserver(() => this.layout()).observe(this.stage);
    roster.on('change', () => this.sync());
    media.on('preview', () => this.#showLocal());
    media.on('state', () => this.#showLocal());
    media.on('screen', () => this.#showLocal());
    media.on('audio', (t) => this.#meter.setTrack(t));
    this.grid.addEventListener('tile-pin', (ev) => this.pin(ev.detail.key));
    setInterval(() => this.#localSpeaking(), 250);
  }

  // sync makes the tiles match the roster: a tile for everyone live, and
  // one for each screen they share.
  sync() {
    const live = this.roster.me.live;
    for (const p of this.roster.list()) {
      if (!live || !p.live) continue;
      const t = this.#tile(p.id);
      t.setName(p.name);
      t.setRole(p.role);
      t.setReconnecting(p.reconnecting);
      t.setMuted({ audio: p.audioMuted, video: p.videoMuted });
      t.setSharing(!!p.sharing);
      const s = this.screens.get(p.id);
      if (s) {
        s.setName(`${p.name}: screen`);
        this.#showScreen(s, !!p.sharing);
      }
    }
    for (const [id, t] of this.tiles) {
      const p = this.roster.get(id);
      if (!live || !p || !p.live) {
        t.remove();
        this.tiles.delete(id);
      }
    }
    for (const [id, t] of this.screens) {
      if (!this.tiles.has(id)) {
        t.remove();
        this.screens.delete(id);
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

  #screenTile(id) {
    let t = this.screens.get(id);
    if (!t) {
      const p = this.roster.get(id);
      t = new Tile({ id: `${id}:screen`, name: `${p?.name || 'Someone'}: screen`, screen: true });
      t.el.hidden = true;
      this.#showScreen(t, !!p?.sharing);
      this.screens.set(id, t);
      this.grid.append(t.el);
    }
    return t;
  }

  // #showScreen shows or hides a screen tile, noting when its share began.
  #showScreen(t, on) {
    if (on && t.el.hidden) this.#sharedAt.set(t, performance.now());
    t.el.hidden = !on;
  }

  // addTrack places a received track on its publisher's tile, or on the
  // tile of their screen (source 'screen'): the owner given (a direct
  // peer's tracks carry no participant id), or the one in the server's
  // track and stream ids.
  addTrack(track, stream, owner = '', source = '') {
    const id = owner || participantOf(track, stream);
    if (!id || !this.roster.me.live) return;
    // A direct peer's late track after it left must not bring back a tile.
    if (owner && !this.roster.get(owner)?.live) return;
    this.#owner.set(track.id, id);
    if (source === 'screen') this.#screenTile(id).addTrack(track);
    else this.#tile(id).addTrack(track);
    this.layout();
  }

  // dropTrack removes a track whose connection closed.
  dropTrack(track) {
    const id = this.#owner.get(track.id);
    if (id) this.removeTrack(id, track.id);
  }

  // videoPaused marks a participant's picture (or shared screen) as
  // paused for our poor connection (or not); null clears every mark (the
  // path changed).
  videoPaused(participant, on, screen = false) {
    if (participant === null) {
      for (const t of [...this.tiles.values(), ...this.screens.values()]) t.setVideoPaused(false);
      return;
    }
    (screen ? this.screens : this.tiles).get(participant)?.setVideoPaused(on);
  }

  removeTrack(participant, trackId) {
    this.tiles.get(participant)?.removeTrack(trackId);
    this.screens.get(participant)?.removeTrack(trackId);
    this.#owner.delete(trackId);
  }

  // clear drops every remote tile (hang up, reconnect).
  clear() {
    for (const t of [...this.tiles.values(), ...this.screens.values()]) t.remove();
    this.#sharedAt.clear();
    this.tiles.clear();
    this.screens.clear();
    this.#owner.clear();
    this.#server = null;
    this.layout();
  }

  setSink(id) {
    this.#sink = id;
    for (const t of this.tiles.values()) t.setSink(id);
  }

  // setView switches between 'grid' and 'speaker'.
  setView(view) {
    this.view = view === 'speaker' ? 'speaker' : 'grid';
    this.layout();
  }

  // pin puts a tile on the main stage (or takes it off, if it was there).
  pin(key) {
    this.pinned = this.pinned === key ? '' : key;
    this.layout();
  }

  // speakers takes the server's speaker event ({participant, active});
  // null goes back to this browser's own levels (the direct path).
  speakers(m) {
    if (!m) {
      this.#server = null;
      return;
    }
    this.#server = { active: new Set(m.active || []) };
    if (m.participant && m.participant !== this.roster.me.id) this.#setDominant(m.participant);
    this.#rings();
  }

  #setDominant(id) {
    if (id === this.dominant) return;
    this.dominant = id;
    if (this.view === 'speaker') this.layout();
  }

  // levels comes from getStats: audio level by received track id.
  levels(byTrack) {
    const now = performance.now();
    let loudest = '';
    let best = SPEAKING_LEVEL;
    for (const [trackId, level] of byTrack) {
      const id = this.#owner.get(trackId);
      if (id && level > SPEAKING_LEVEL) this.#spoke.set(id, now);
      if (id && level > best) [loudest, best] = [id, level];
    }
    if (!this.#server && loudest) {
      this.#cand = loudest === this.#cand.id ? { id: loudest, n: this.#cand.n + 1 } : { id: loudest, n: 1 };
      if (this.#cand.n >= DOMINANT_READS) this.#setDominant(loudest);
    }
    this.#rings();
  }

  #cand = { id: '', n: 0 }; // the loudest, and for how many reads in a row

  // #rings marks who speaks: the server's active set when it sends one,
  // else our own levels, held a moment so the ring does not flicker.
  #rings() {
    const now = performance.now();
    const speaking = (id) => (this.#server ? this.#server.active.has(id)
      : now - (this.#spoke.get(id) || -1e9) < SPEAKING_HOLD_MS);
    for (const [id, t] of this.tiles) {
      const p = this.roster.get(id);
      t.setSpeaking(!p?.audioMuted && speaking(id));
    }
    const me = this.#server ? this.#server.active.has(this.roster.me.id) : speaking('local');
    this.local.setSpeaking(this.media.micOn && me);
  }

  #localSpeaking() {
    const now = performance.now();
    if (this.media.micOn && this.#meter.level() > 0.08) this.#spoke.set('local', now);
    if (!this.#server) this.local.setSpeaking(now - (this.#spoke.get('local') || -1e9) < SPEAKING_HOLD_MS);
    if (this.onLevel) this.onLevel(this.#meter.level());
  }

  #showLocal() {
    const m = this.media;
    this.local.setLocal(m.previewStream());
    this.local.setMuted({ audio: !m.micOn || !m.mic, video: !m.camOn || !m.cam });
    this.local.setSharing(!!m.screen);
    this.localScreen.setLocal(m.screenStream);
    const sharing = !!m.screen && this.roster.me.live;
    if (sharing && !this.localScreen.el.isConnected) {
      this.grid.append(this.localScreen.el);
      this.#sharedAt.set(this.localScreen, performance.now());
    } else if (!sharing && this.localScreen.el.isConnected) this.localScreen.el.remove();
    this.layout();
  }

  // speakerSource says where who-speaks comes from now: 'server' or
  // 'local' (this browser's levels).
  get speakerSource() {
    return this.#server ? 'server' : 'local';
  }

  // mainTile is the tile on the main stage, or null for the grid.
  mainTile() {
    return this.#main;
  }

  #chooseMain(remotes, screens) {
    const all = new Map([...remotes.map((t) => [t.id, t]), ...screens.map((t) => [t.id, t])]);
    if (this.pinned && all.has(this.pinned)) return all.get(this.pinned);
    // The newest shared screen: a second presenter takes over.
    if (screens.length) return screens.reduce((a, b) => ((this.#sharedAt.get(b) ?? 0) > (this.#sharedAt.get(a) ?? 0) ? b : a));
    if (this.view !== 'speaker' || !remotes.length) return null;
    return this.tiles.get(this.dominant) || (this.#main && remotes.includes(this.#main) ? this.#main : remotes[0]);
  }

  // layout sizes the tiles. With exactly one other person and nothing on
  // the main stage, our own picture floats in a corner, as people expect
  // from a one-to-one call.
  layout() {
    const live = this.roster.me.live;
    const remotes = [...this.tiles.values()];
    const screens = live ? [...this.screens.values(), this.localScreen].filter((t) => t.el.isConnected && !t.el.hidden) : [];
    const main = live ? this.#chooseMain(remotes, screens) : null;
    this.#main = main;
    const pip = live && remotes.length === 1 && !main;
    const el = this.local.el;
    el.classList.toggle('pip', pip);
    // Move our tile only when needed: each move restarts nothing, but
    // there is no reason to touch a playing video element.
    if (!live) el.remove();
    else if (pip && el.parentNode !== this.stage) this.stage.append(el);
    else if (!pip && el.parentNode !== this.grid) this.grid.append(el); // "you" last
    const n = remotes.length + (live && !pip ? 1 : 0);
    $('alone').hidden = !live || remotes.length > 0 || screens.length > 0;
    for (const t of [...remotes, ...screens, this.local]) {
      t.setMain(t === main);
      t.setPinned(this.pinned === t.id);
    }
    this.grid.dataset.layout = main ? 'focus' : 'grid';
    this.stage.dataset.layout = this.grid.dataset.layout;
    // On a phone, one other person fills the screen edge to edge.
    this.grid.dataset.solo = String(pip && window.matchMedia('(max-width: 720px)').matches);
    const r = this.grid.getBoundingClientRect();
    if (!n || !r.width || !r.height) return;
    if (main) {
      const strip = [...screens, ...remotes, ...(pip ? [] : [this.local])].filter((t) => t !== main);
      const rects = focusLayout(strip.length, Math.floor(r.width), Math.floor(r.height));
      [main, ...strip].forEach((t, i) => t.place(rects[i]));
    } else {
      for (const t of [...remotes, this.local]) t.place(null);
      const { w, h } = this.grid.dataset.solo === 'true'
        ? { w: Math.floor(r.width), h: Math.floor(r.height) } : bestLayout(n, r.width, r.height);
      this.grid.style.setProperty('--tile-w', `${w}px`);
      this.grid.style.setProperty('--tile-h', `${h}px`);
    }
    this.grid.dataset.count = String(n);
    for (const t of [...remotes, ...screens, this.local]) t.refit();
  }
}
