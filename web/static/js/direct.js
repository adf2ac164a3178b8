// DirectLink is the PeerConnection of the 1:1 direct path (docs/protocol.md,
// "The 1:1 direct path"): this page and one peer, with the server only
// relaying offer, answer and candidates (target: the peer, pc: "p2p").
//
// The server says who offers. The answering side takes the offer's m-lines
// as its own senders, so both sides send on the same transceivers and
// later changes (mute, camera switch, screen share) are replaceTrack with
// no new offer. The m-lines come in a fixed order: audio, the camera, then
// the screen (the second video m-line), which is how each side tells a
// received screen from a camera. A peer that offers no third m-line (the Go
// client) simply gets no screen. Should an offer arrive while ours is out,
// the W3C "perfect negotiation" rule settles it: the offerer is impolite and
// ignores it, the other side rolls back.
//
// Audio prefers RED (RFC 2198: each Opus packet carries the one before
// it), on both sides, as the server does for the SFU path: a patient on
// a lossy link keeps whole speech where a lost packet would otherwise be
// concealed. A peer without RED (the Go client) answers plain Opus.
//
// Only host and server-reflexive candidates go out: the server hands STUN
// servers only, and a relayed direct path would be no better than the SFU.
// A link that goes silent is restarted by the offering side (ICE restart,
// relayed); one that is not back within RECOVER_MS is reported failed, and
// the server moves the call to the SFU.
// Events: 'track' (track, source: '' or 'screen'), 'state' (connectionState).

import { Emitter } from './ui.js';
import { selectedPair } from './stats.js';
import { preferCodec } from './codecs.js';

const RESTART_AFTER_MS = 1500;
const RECOVER_MS = 5000;

export class DirectLink extends Emitter {
  #early = []; // candidates that came before the remote description
  #tail = Promise.resolve();
  #reported = false;
  #failed = false;
  #closed = false;
  up = false; // ICE connected at least once

  constructor(signal, { peer, offerer, iceServers }, local) {
    super();
    this.signal = signal;
    this.peer = peer;
    this.polite = !offerer;
    this.local = local; // {audio, video, stream, screen, screenStream}
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [], bundlePolicy: 'max-bundle' });
    this.pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      if (!c || c.type === 'relay' || this.#closed) return;
      this.signal.send('candidate', { target: peer, pc: 'p2p', candidate: c.toJSON() });
    };
    this.pc.ontrack = (ev) => this.emit('track', ev.track, this.#role(ev.transceiver) === 'screen' ? 'screen' : '');
    this.pc.onconnectionstatechange = () => this.#stateChanged();
    if (offerer) {
      for (const role of ['audio', 'video', 'screen']) {
        const stream = role === 'screen' ? local.screenStream : local.stream;
        const tr = this.pc.addTransceiver(local[role] || (role === 'audio' ? 'audio' : 'video'), { direction: 'sendrecv', streams: [stream] });
        if (role === 'audio') preferCodec(tr, 'audio/red');
      }
      this.#run(async () => {
        await this.pc.setLocalDescription();
        this.signal.send('offer', { target: peer, sdp: this.pc.localDescription.sdp });
      });
    }
  }

  get state() {
    return this.pc.connectionState;
  }

  // setSignal moves the link to a resumed socket.
  setSignal(signal) {
    this.signal = signal;
  }

  // restartIce offers the peer new ICE credentials; should both sides
  // offer at once, the perfect-negotiation rule keeps one.
  restartIce() {
    if (this.#closed || !this.up) return;
    this.#run(async () => {
      this.pc.restartIce();
      await this.pc.setLocalDescription();
      this.signal.send('offer', { target: this.peer, sdp: this.pc.localDescription.sdp });
    });
  }

  // #run keeps the steps on this connection in order, so a candidate is
  // never added before the description it belongs to.
  #run(step) {
    this.#tail = this.#tail.then(step).catch((err) => {
      console.warn('direct path:', err);
      this.#report({ state: 'failed' });
    });
    return this.#tail;
  }

  onDescription(type, sdp) {
    this.#run(async () => {
      if (this.#closed) return;
      if (type === 'offer' && this.pc.signalingState !== 'stable') {
        if (!this.polite) return; // offers crossed: ours wins
        await this.pc.setLocalDescription({ type: 'rollback' });
      }
      await this.pc.setRemoteDescription({ type, sdp });
      for (const c of this.#early.splice(0)) await this.pc.addIceCandidate(c);
      if (type !== 'offer') return;
      for (const tr of this.pc.getTransceivers()) {
        const role = this.#role(tr);
        if (role === 'audio') preferCodec(tr, 'audio/red'); // the answer's order
        if (!role || tr.sender.track || tr.currentDirection === 'sendrecv') continue;
        tr.direction = 'sendrecv';
        tr.sender.setStreams(role === 'screen' ? this.local.screenStream : this.local.stream);
        await tr.sender.replaceTrack(this.local[role] || null);
      }
      await this.pc.setLocalDescription();
      this.signal.send('answer', { target: this.peer, sdp: this.pc.localDescription.sdp });
    });
  }

  onCandidate(candidate) {
    if (!candidate?.candidate) return;
    this.#run(async () => {
      if (this.#closed) return;
      if (!this.pc.remoteDescription) this.#early.push(candidate);
      else await this.pc.addIceCandidate(candidate);
    });
  }

  // #role is what a transceiver carries, by its place among those of its
  // kind: 'audio', 'video' (the camera), 'screen', or '' (an m-line this
  // page does not use).
  #role(tr) {
    const kind = tr.receiver.track.kind;
    const same = this.pc.getTransceivers().filter((t) => t.receiver.track.kind === kind);
    const i = same.indexOf(tr);
    if (kind === 'audio') return i === 0 ? 'audio' : '';
    return ['video', 'screen'][i] || '';
  }

  // replace changes what goes out in one role (audio, video, screen),
  // without renegotiating.
  async replace(kind, track) {
    this.local[kind] = track;
    for (const tr of this.pc.getTransceivers()) {
      if (this.#role(tr) !== kind || tr.sender.track === track) continue;
      if (!tr.sender.track && tr.currentDirection !== 'sendrecv' && tr.direction !== 'sendrecv') continue;
      try {
        await tr.sender.replaceTrack(track);
      } catch (err) {
        console.warn(`direct replaceTrack(${kind})`, err);
      }
    }
  }

  async #stateChanged() {
    const s = this.pc.connectionState;
    this.emit('state', s);
    if (s === 'disconnected') {
      const down = () => !this.#closed && ['disconnected', 'failed'].includes(this.pc.connectionState);
      if (!this.polite) setTimeout(() => down() && this.restartIce(), RESTART_AFTER_MS);
      setTimeout(() => down() && this.#report({ state: 'failed' }), RECOVER_MS);
    }
    if (s === 'connected' && !this.#reported) {
      this.up = true;
      const pair = await this.#selectedTypes();
      this.#report({ state: 'connected', ...pair });
    } else if (s === 'failed') {
      this.#report({ state: 'failed' });
    }
  }

  // #selectedTypes reads the selected candidate pair's local and remote
  // candidate types (host, srflx, prflx or relay) from getStats.
  async #selectedTypes() {
    try {
      const stats = await this.pc.getStats();
      const pair = selectedPair(stats);
      return {
        local: stats.get(pair?.localCandidateId)?.candidateType || '',
        remote: stats.get(pair?.remoteCandidateId)?.candidateType || '',
      };
    } catch {
      return { local: '', remote: '' };
    }
  }

  // #report tells the server the attempt's outcome, once; a failure after
  // success is reported too, since the server then falls back to the SFU.
  #report(st) {
    if (this.#closed) return;
    if (st.state === 'connected') this.#reported = true;
    else if (this.#failed) return;
    else this.#failed = true;
    this.signal.send('p2p-state', st);
  }

  // tracks returns what this connection receives, for the stage to drop
  // when it closes (closing fires no 'ended' on received tracks).
  tracks() {
    return this.pc.getReceivers().map((r) => r.track);
  }

  close() {
    this.#closed = true;
    this.pc.onconnectionstatechange = null;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.close();
  }
}
