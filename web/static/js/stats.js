// StatsMonitor reads RTCPeerConnection.getStats() of a session twice a
// second. It emits 'levels' (received audio level per track id, for the
// speaking indicator) on every read and 'quality' (round-trip time, loss,
// and a verdict) every two seconds, which is enough for a steady indicator
// and cheap on a phone.

import { Emitter } from './ui.js';

const TICK_MS = 500;
const QUALITY_EVERY = 4;

// verdict grades a connection the way a person experiences it: up to
// 200 ms and 2 % loss is unnoticeable, up to 500 ms and 8 % is usable.
export function verdict(rtt, loss) {
  if (rtt == null && loss == null) return 'unknown';
  const r = rtt ?? 0;
  const l = loss ?? 0;
  if (r < 0.2 && l < 0.02) return 'good';
  if (r < 0.5 && l < 0.08) return 'fair';
  return 'poor';
}

export class StatsMonitor extends Emitter {
  #timer = null;
  #busy = false;
  #n = 0;
  #last = { lost: 0, received: 0 };

  constructor(session) {
    super();
    this.session = session;
  }

  start() {
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS);
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
  }

  async #tick() {
    if (this.#busy) return; // a slow getStats must not pile up
    this.#busy = true;
    try {
      // On the direct path one connection both sends and receives.
      const { sendPC: pub, recvPC: sub } = this.session;
      const subStats = sub && sub.connectionState !== 'closed' ? await sub.getStats() : null;
      if (subStats) this.emit('levels', audioLevels(subStats));
      if (++this.#n % QUALITY_EVERY === 0) {
        const pubStats = pub && pub.connectionState !== 'closed' ? await pub.getStats() : null;
        this.emit('quality', this.#quality(pubStats, subStats));
      }
    } catch (err) {
      console.debug('getStats', err);
    } finally {
      this.#busy = false;
    }
  }

  #quality(pubStats, subStats) {
    let rtt = null;
    let loss = null;
    let jitter = 0;
    let relay = false;
    for (const stats of [pubStats, subStats]) {
      if (!stats) continue;
      const pair = selectedPair(stats);
      if (pair?.currentRoundTripTime != null) rtt = Math.max(rtt ?? 0, pair.currentRoundTripTime);
      if (stats.get(pair?.localCandidateId)?.candidateType === 'relay') relay = true;
    }
    // What we send: the server's receiver reports say how much it lost.
    pubStats?.forEach((r) => {
      if (r.type === 'remote-inbound-rtp' && r.fractionLost != null) loss = Math.max(loss ?? 0, r.fractionLost);
    });
    // What we receive: packets lost since the last look.
    if (subStats) {
      let lost = 0;
      let received = 0;
      subStats.forEach((r) => {
        if (r.type === 'inbound-rtp') {
          lost += r.packetsLost || 0;
          received += r.packetsReceived || 0;
          if (r.kind === 'audio' && r.jitter != null) jitter = Math.max(jitter, r.jitter);
        }
      });
      const dl = lost - this.#last.lost;
      const dr = received - this.#last.received;
      if (dr > 0 && dl >= 0) loss = Math.max(loss ?? 0, dl / (dl + dr));
      this.#last = { lost, received };
    }
    return { rtt, loss, jitterMs: Math.round(jitter * 1000), relay, level: verdict(rtt, loss) };
  }
}

// selectedPair is the candidate pair a connection uses, or null.
export function selectedPair(stats) {
  let pair = null;
  stats.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
  });
  if (pair) return pair;
  stats.forEach((r) => {
    if (!pair && r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r;
  });
  return pair;
}

function audioLevels(stats) {
  const levels = new Map();
  stats.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio' && r.trackIdentifier) {
      levels.set(r.trackIdentifier, r.audioLevel || 0);
    }
  });
  return levels;
}
