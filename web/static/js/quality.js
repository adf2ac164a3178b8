// QualityView shows the server's view of everyone's connection (quality
// messages, docs/protocol.md "Network quality"): a small mark on each
// tile, with the figures in plain words in its tooltip, and, for a
// clinician, a notice when a patient's connection turns poor, so they can
// slow down, turn their own video off or call back by phone.

import { toast } from './ui.js';

const ALERT_AGAIN_MS = 60000; // one notice per person per minute at most

export class QualityView {
  #last = new Map(); // participant id -> last level
  #alerted = new Map(); // participant id -> when we last said so

  constructor(stage, roster) {
    this.stage = stage;
    this.roster = roster;
  }

  // update takes a quality message's members.
  update(members) {
    const me = this.roster.me;
    for (const q of members || []) {
      const tile = q.participant === me.id ? this.stage.local : this.stage.tiles.get(q.participant);
      tile?.setQuality(q);
      const before = this.#last.get(q.participant);
      this.#last.set(q.participant, q.level);
      if (q.level === 'poor' && before !== 'poor' && me.role === 'host' && q.participant !== me.id) this.#alert(q.participant);
    }
  }

  #alert(id) {
    const p = this.roster.get(id);
    if (!p || p.role === 'host') return;
    const now = performance.now();
    if (now - (this.#alerted.get(id) ?? -Infinity) < ALERT_AGAIN_MS) return;
    this.#alerted.set(id, now);
    toast(`${p.name}'s connection is poor: their picture may freeze or their sound break up.`, { tone: 'warn' });
  }

  // clear forgets everything (the call ended, or the page left it).
  clear() {
    this.#last.clear();
    this.stage.local.setQuality(null);
  }
}
