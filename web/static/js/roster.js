// Roster is this page's picture of the room: who is present, who is live,
// who muted what. It is fed only by server messages (joined,
// participant-joined/-updated/-left, track-published/-unpublished) and
// emits 'change' with what changed, so views redraw from one source.

import { Emitter } from './ui.js';

export class Roster extends Emitter {
  me = { id: '', name: '', live: false, role: '' };
  people = new Map();

  // reset takes the joined message: who we are (the server's name for us,
  // which a token may set, and our role) and whom we may see.
  reset(joined, name) {
    this.me = { id: joined.you, name: joined.name || name, live: !!joined.live, role: joined.role || 'host' };
    this.people.clear();
    for (const p of joined.participants || []) this.people.set(p.id, p);
    this.emit('change', { kind: 'reset' });
  }

  clear() {
    this.me = { id: '', name: this.me.name, live: false, role: this.me.role };
    this.people.clear();
    this.emit('change', { kind: 'reset' });
  }

  setLive(live) {
    this.me.live = live;
    this.emit('change', { kind: 'me' });
  }

  upsert(p, kind) {
    if (!p?.id || p.id === this.me.id) return;
    const before = this.people.get(p.id);
    this.people.set(p.id, p);
    this.emit('change', { kind, participant: p, before });
  }

  remove(id) {
    const p = this.people.get(id);
    if (!p) return;
    this.people.delete(id);
    this.emit('change', { kind: 'left', participant: p });
  }

  track(id, track, published) {
    const p = this.people.get(id);
    if (!p) return;
    const others = (p.tracks || []).filter((t) => t.id !== track.id);
    p.tracks = published ? [...others, track] : others;
    this.emit('change', { kind: published ? 'track-published' : 'track-unpublished', participant: p, track });
  }

  get(id) {
    return this.people.get(id);
  }

  name(id) {
    if (id === this.me.id) return 'You';
    return this.people.get(id)?.name || 'Someone';
  }

  list() {
    return [...this.people.values()];
  }

  waiting() {
    return this.list().filter((p) => !p.live);
  }
}

// participantOf maps a received track to its publisher. The server names
// tracks and streams "<participantId>:<publisher's id>", so the part before
// the first colon is the participant; the stream id is tried first since
// every browser keeps it, then the track id.
export function participantOf(track, stream) {
  for (const id of [stream?.id, track?.id]) {
    if (id && id.includes(':')) return id.slice(0, id.indexOf(':'));
  }
  return '';
}
