// MediaSession is a live participant's two PeerConnections with the SFU:
//   publish:   this page offers, sends its microphone and camera;
//   subscribe: the server offers, this page answers and receives the
//              others' tracks (one offer per change in the room).
// Candidates travel with pc:"publish"|"subscribe" and target:"server".
//
// In a 1:1 call the server may choose the direct path instead (mode
// messages, docs/protocol.md): then a DirectLink to the peer carries the
// call and the server connections close, or are never opened. Every switch
// is make-before-break: the new path's tracks are handed to the stage as
// they come, the stage shows them once they carry media, this page says
// path-ready once the peer's video arrives over the new path, and the old
// path closes when the server says both sides are over (mode … active).
//
// A connection whose path goes silent restarts ICE (docs/protocol.md,
// "Resume"): the publish one by a new offer with fresh credentials, the
// subscribe one by asking the server for one, the direct one by the
// offering side; so does every connection when the network changes. The
// session outlives a dropped socket: the app hands it the new one.
//
// Each transceiver is created once and kept: switching camera, muting the
// camera or sharing the screen is RTCRtpSender.replaceTrack, which needs
// no new offer. That is also why a missing device still gets a (trackless)
// transceiver: plugging one in later needs no renegotiation either. A
// screen share has a third transceiver of its own, in its own stream, so
// it goes out beside the camera; every offer names its mid ("screen"), and
// the server marks that track as a screen for the others.

import { Emitter } from './ui.js';
import { DirectLink } from './direct.js';
import { participantOf } from './roster.js';
import { selectedPair } from './stats.js';
import { preferCodec } from './codecs.js';

// RESTART_AFTER_MS is how long a connection may stay disconnected before
// this page restarts its ICE; RESTART_EVERY_MS how often it tries again
// while the path stays down.
const RESTART_AFTER_MS = 1500;
const RESTART_EVERY_MS = 4000;
// SILENT_MS: a transport that received nothing (media, RTCP, the
// server's keepalives every 500 ms) for this long has lost its path.
const SILENT_MS = 1500;

// CAMERA_LAYERS is the camera's simulcast towards the server: quarter,
// half and full size, lowest first, with caps for a consult's face on a
// phone (docs/simulcast.md). The server sends each subscriber the layer
// its downlink carries; the direct path sends one stream and lets the two
// browsers adapt it. A browser sends fewer layers for a small camera.
const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 60_000, maxFramerate: 15 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

// Queue runs async steps on one PeerConnection strictly in order, so a
// candidate is never added before the description it belongs to.
class Queue {
  #tail = Promise.resolve();
  run(step) {
    this.#tail = this.#tail.then(step).catch((err) => console.warn('webrtc:', err));
    return this.#tail;
  }
}

export class MediaSession extends Emitter {
  pub = null;
  sub = null;
  #senders = {};
  #pubQ = new Queue();
  #subQ = new Queue();
  #closed = false;
  #states = { publish: 'new', subscribe: 'new' };
  #local = null; // {audio, video, stream, screen, screenStream}: what we send
  #directTracks = new WeakSet();
  #serverOwner = new WeakMap(); // server track -> participant id
  #retired = null; // a direct link kept until the server retires it
  #readySent = false; // path-ready "sfu" went out for #retired
  direct = null; // DirectLink in a 1:1 call on (or trying) the direct path
  directActive = false; // the direct path carries the call
  mode = 'sfu';

  // publish is false for a member whose token grants no publishing: it
  // only receives.
  constructor(signal, iceServers, { publish = true, simulcast = false, videoCodec = '' } = {}) {
    super();
    this.signal = signal;
    this.canPublish = publish;
    this.simulcast = simulcast; // the server asked for the camera as layers
    this.videoCodec = videoCodec; // the room's, to publish (codecs.js)
    this.config = { iceServers: iceServers || [], bundlePolicy: 'max-bundle' };
  }

  // setSignal moves the session to a resumed socket, and sends the
  // restarts that could not go out while it was down.
  setSignal(signal) {
    this.signal = signal;
    this.direct?.setSignal(signal);
    this.#retired?.setSignal(signal);
    // A path may have come back by itself meanwhile: restart only those
    // still silent (a needless restart costs seconds of picture).
    const pending = this.#pending.size > 0;
    this.#pending.clear();
    if (pending) setTimeout(() => this.checkPaths(), 1000);
    const pc = this.pub;
    if (this.#recodecPending && pc) {
      this.#pubQ.run(async () => {
        if (this.pub !== pc || pc.signalingState !== 'stable' || !this.#recodecPending) return;
        this.#recodecPending = !(await this.#offerAgain(pc));
      });
    }
  }

  #pending = new Set(); // restarts asked for while the socket was down

  // checkPaths restarts ICE on the connections that a change of network
  // broke: those that received nothing for SILENT_MS. A restart is not
  // free (a working connection restarted through the SFU stalled the
  // picture for seconds in the browser tests), so those still receiving
  // are left alone; a path that dies later is caught by #watch.
  async checkPaths(which = ['publish', 'subscribe', 'p2p']) {
    const now = performance.timeOrigin + performance.now();
    for (const [name, pc] of [['publish', this.pub], ['subscribe', this.sub], ['p2p', this.direct?.pc]]) {
      if (!pc || this.#closed || !which.includes(name)) continue;
      let last = 0;
      try {
        last = selectedPair(await pc.getStats())?.lastPacketReceivedTimestamp || 0;
      } catch {
        continue;
      }
      if (now - last > SILENT_MS) this.restartIce([name]);
    }
  }

  // restartIce restarts ICE on the named connections (all by default):
  // after a change of network, or when a path went silent.
  restartIce(which = ['publish', 'subscribe', 'p2p']) {
    if (this.#closed) return;
    if (!this.signal.open) {
      // Nothing reaches the server now: restart when the socket is back.
      for (const w of which) this.#pending.add(w);
      return;
    }
    const pc = this.pub;
    if (which.includes('publish') && pc) {
      this.#pubQ.run(async () => {
        if (this.pub !== pc) return;
        // One offer at a time: with one out, restart once it is answered.
        if (pc.signalingState !== 'stable') {
          this.#restartPending = true;
          return;
        }
        // The socket went meanwhile: send it later.
        if (!(await this.#offerAgain(pc, true))) this.#pending.add('publish');
      });
    }
    if (which.includes('subscribe') && this.sub && !this.signal.send('ice-restart', { pc: 'subscribe' })) {
      this.#pending.add('subscribe');
    }
    if (which.includes('p2p')) this.direct?.restartIce();
  }

  // start begins sending the current tracks: to the server, unless the
  // room is on the direct path (mode "p2p"), where a mode message says
  // which peer to connect to.
  // Mode "wait" sends nothing until the server's mode message comes.
  start({ audio, video, stream, screen = null, screenStream = new MediaStream() }, mode = 'sfu') {
    this.#local = { audio, video, stream, screen, screenStream };
    this.mode = mode;
    if (mode === 'sfu') this.#publish();
  }

  #publish() {
    if (this.pub || this.#closed || !this.canPublish) return;
    const { audio, video, stream, screen, screenStream } = this.#local;
    this.pub = this.#newPC('publish');
    for (const [kind, track, s] of [['audio', audio, stream], ['video', video, stream], ['screen', screen, screenStream]]) {
      const init = { direction: 'sendonly', streams: [s] };
      if (kind === 'video' && this.simulcast) init.sendEncodings = CAMERA_LAYERS.map((l) => ({ ...l }));
      const tr = this.pub.addTransceiver(track || (kind === 'audio' ? 'audio' : 'video'), init);
      if (kind !== 'audio') preferCodec(tr, this.videoCodec);
      this.#senders[kind] = tr.sender;
      if (kind === 'screen') this.#screenTr = tr;
    }
    const pc = this.pub;
    this.#pubQ.run(async () => {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      this.signal.send('offer', this.#offerBody(offer));
    });
    this.emit('state', this.state);
  }

  #screenTr = null;

  // #offerBody is a publish offer to the server, naming the screen's
  // transceiver (its mid is set once the offer is the local description).
  #offerBody(offer) {
    return { target: 'server', sdp: offer.sdp, screen: this.#screenTr?.mid || undefined };
  }

  // setVideoCodec follows the room's choice of video codec (a codec
  // message): the camera and screen prefer it, and a new offer makes the
  // server's answer put it first, which switches the encoder.
  setVideoCodec(mime) {
    if (this.#closed || !mime || mime === this.videoCodec) return;
    this.videoCodec = mime;
    const pc = this.pub;
    if (!pc) return; // the first offer will have it
    this.#pubQ.run(async () => {
      if (this.pub !== pc) return;
      let changed = false;
      for (const tr of pc.getTransceivers()) {
        if (tr.receiver.track?.kind === 'video' && tr.direction !== 'inactive') changed = preferCodec(tr, mime) || changed;
      }
      if (!changed) return;
      if (pc.signalingState !== 'stable') {
        this.#recodecPending = true; // offer again once this one is answered
        return;
      }
      // The socket went: offer again once it is back.
      this.#recodecPending = !(await this.#offerAgain(pc));
    });
  }

  #recodecPending = false;

  // #offerAgain sends a new publish offer on pc (iceRestart: with fresh
  // ICE credentials). If the socket is down it takes the offer back and
  // returns false.
  async #offerAgain(pc, iceRestart = false) {
    const offer = await pc.createOffer({ iceRestart });
    await pc.setLocalDescription(offer);
    if (this.signal.send('offer', this.#offerBody(offer))) return true;
    await pc.setLocalDescription({ type: 'rollback' });
    return false;
  }

  // setLayers follows the server's word on which of the camera's layers
  // somebody needs (a layers message): the others stop, which saves this
  // device's CPU and uplink, until they are needed again.
  setLayers({ active = [], inactive = [] }) {
    const s = this.#senders.video;
    if (!s || !this.simulcast || this.#closed) return;
    this.#pubQ.run(async () => {
      const p = s.getParameters();
      if (!p.encodings || p.encodings.length < 2) return;
      let changed = false;
      for (const e of p.encodings) {
        const want = active.includes(e.rid) ? true : inactive.includes(e.rid) ? false : e.active;
        if (e.active !== want) {
          e.active = want;
          changed = true;
        }
      }
      if (!p.encodings.some((e) => e.active)) p.encodings[0].active = true; // never nothing
      if (changed) await s.setParameters(p);
    });
  }

  // replace changes what a sender sends (kind audio, video or screen),
  // without renegotiating.
  async replace(kind, track) {
    if (this.#closed || !this.#local) return;
    this.#local[kind] = track;
    this.direct?.replace(kind, track);
    const s = this.#senders[kind];
    if (!s || s.track === track) return;
    try {
      await s.replaceTrack(track);
    } catch (err) {
      console.warn(`replaceTrack(${kind})`, err);
    }
  }

  // onMode follows the server's choice of media path.
  onMode(m) {
    if (this.#closed || !this.#local) return;
    this.mode = m.mode;
    if (m.mode === 'sfu' && m.state === 'active') {
      // Both sides receive through the server now.
      this.#closeRetired();
    } else if (m.mode === 'sfu') {
      this.#retire();
      this.#publish();
    } else if (m.state === 'trying') {
      this.#retire();
      this.#openDirect(m);
    } else if (m.state === 'active') {
      this.directActive = true;
      this.#closeServer();
      this.#closeRetired();
    } else {
      // Alone, waiting for a peer (who may just have left a direct call).
      this.directActive = false;
      this.#closeDirect(this.direct);
      this.direct = null;
      this.#closeRetired();
    }
    this.emit('state', this.state);
  }

  #openDirect(m) {
    const d = new DirectLink(this.signal, m, { ...this.#local });
    this.direct = d;
    d.on('track', (t, source) => {
      this.#directTracks.add(t);
      this.emit('track', t, null, d.peer, source);
      // Back from the SFU, the server keeps its sessions until both sides
      // see each other directly (the camera says so: a screen may be off).
      if (t.kind !== 'video' || source === 'screen') return;
      const ready = () => this.direct === d && this.signal.send('path-ready', { path: 'p2p' });
      if (!t.muted) ready();
      else t.addEventListener('unmute', ready, { once: true });
    });
    d.on('state', () => this.emit('state', this.state));
  }

  #closeDirect(d) {
    if (!d) return;
    if (this.direct === d) this.direct = null;
    d.close();
    for (const t of d.tracks()) this.emit('ended', t);
  }

  // #retire takes the current direct link out of use. One that never
  // connected goes at once; one that carried the call stays until the
  // server retires it (mode sfu active), which it does once both sides
  // receive each other through it, or after a bound (a camera may be off).
  #retire() {
    const d = this.direct;
    this.direct = null;
    this.directActive = false;
    if (!d) return;
    if (!d.up) {
      this.#closeDirect(d);
      return;
    }
    this.#closeRetired();
    this.#retired = d;
    this.#readySent = false;
    this.#checkRetired();
  }

  #closeRetired() {
    const d = this.#retired;
    this.#retired = null;
    this.#closeDirect(d);
  }

  // #checkRetired says path-ready once the server delivers the retired
  // link's peer's video.
  #checkRetired() {
    const d = this.#retired;
    if (!d || this.#readySent || !this.sub) return;
    const flowing = this.sub.getReceivers().some((r) => r.track.kind === 'video' && r.track.readyState === 'live'
      && !r.track.muted && this.#serverOwner.get(r.track) === d.peer);
    if (flowing) this.#readySent = this.signal.send('path-ready', { path: 'sfu' });
  }

  #closeServer() {
    for (const pc of [this.pub, this.sub]) {
      if (!pc) continue;
      const tracks = pc.getReceivers().map((r) => r.track);
      this.#shut(pc);
      for (const t of tracks) this.emit('ended', t);
    }
    this.pub = this.sub = null;
    this.#senders = {};
    this.#screenTr = null;
    this.#states = { publish: 'new', subscribe: 'new' };
  }

  // pathOf says which path a received track came over.
  pathOf(track) {
    return this.#directTracks.has(track) ? 'p2p' : 'sfu';
  }

  // sendPC and recvPC are what the stats monitor reads.
  get sendPC() {
    return this.directActive ? this.direct?.pc : this.pub;
  }

  get recvPC() {
    return this.directActive ? this.direct?.pc : this.sub;
  }

  // isDirect says whether a negotiation message is the peer's (relayed by
  // the server) rather than the server's own.
  #isDirect(msg) {
    return !!msg.from && msg.from !== 'server';
  }

  // #stale: the server's messages still in flight when the direct path
  // took over; its session is gone, so they must not reopen a connection.
  #stale() {
    return this.directActive || this.#closed;
  }

  onAnswer(msg) {
    if (this.#isDirect(msg)) {
      if (this.direct?.peer === msg.from) this.direct.onDescription('answer', msg.sdp);
      return;
    }
    const pc = this.pub;
    if (!pc || this.#stale()) return;
    this.#pubQ.run(async () => {
      await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      if (this.#restartPending) {
        this.#restartPending = false;
        this.#recodecPending = false; // the restart's offer has the codec too
        this.restartIce(['publish']);
      } else if (this.#recodecPending && this.pub === pc) {
        this.#recodecPending = !(await this.#offerAgain(pc));
      }
    });
  }

  onOffer(msg) {
    if (this.#isDirect(msg)) {
      if (this.direct?.peer === msg.from) this.direct.onDescription('offer', msg.sdp);
      return;
    }
    if (this.#stale()) return;
    if (!this.sub) {
      this.sub = this.#newPC('subscribe');
      this.sub.ontrack = (ev) => {
        const stream = ev.streams[0] || null;
        this.#serverOwner.set(ev.track, participantOf(ev.track, stream));
        // The server puts a screen share in a stream "<id>:screen".
        this.emit('track', ev.track, stream, '', stream?.id.endsWith(':screen') ? 'screen' : '');
        ev.track.addEventListener('unmute', () => this.#checkRetired());
        this.#checkRetired();
      };
    }
    const sub = this.sub;
    this.#subQ.run(async () => {
      await sub.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      const answer = await sub.createAnswer();
      await sub.setLocalDescription(answer);
      this.signal.send('answer', { target: 'server', sdp: answer.sdp });
    });
  }

  onCandidate(msg) {
    if (this.#isDirect(msg)) {
      if (this.direct?.peer === msg.from) this.direct.onCandidate(msg.candidate);
      return;
    }
    const isPub = msg.pc === 'publish';
    const pc = isPub ? this.pub : this.sub;
    const q = isPub ? this.#pubQ : this.#subQ;
    if (!pc || !msg.candidate?.candidate) return;
    q.run(() => pc.addIceCandidate(msg.candidate));
  }

  #newPC(name) {
    const pc = new RTCPeerConnection(this.config);
    pc.onicecandidate = (ev) => {
      // null marks the end of gathering; the server needs no such marker.
      if (ev.candidate && !this.#closed) {
        this.signal.send('candidate', { target: 'server', pc: name, candidate: ev.candidate.toJSON() });
      }
    };
    pc.onconnectionstatechange = () => {
      this.#states[name] = pc.connectionState;
      this.emit('state', this.state);
      this.#watch(name, pc);
    };
    return pc;
  }

  // #watch restarts ICE on a connection that stays disconnected for
  // RESTART_AFTER_MS, or failed, and again every RESTART_EVERY_MS while
  // it does not come back (a browser gives its checks up after a while).
  #watch(name, pc) {
    const down = () => !this.#closed && (pc === this.pub || pc === this.sub)
      && ['disconnected', 'failed'].includes(pc.connectionState);
    if (!down() || this.#watching.has(pc)) return;
    this.#watching.add(pc);
    const tick = (wait) => setTimeout(() => {
      if (!down()) {
        this.#watching.delete(pc);
        return;
      }
      this.restartIce([name]);
      tick(RESTART_EVERY_MS);
    }, wait);
    tick(pc.connectionState === 'failed' ? 0 : RESTART_AFTER_MS);
  }

  #watching = new WeakSet();
  #restartPending = false; // an ICE restart of publish waits for an answer

  // state folds the connections in use into one word for the person: the
  // worst of them, since any failing spoils the call. Waiting alone for a
  // peer on the direct path, nothing needs connecting.
  get state() {
    // A failed direct path is not the end: the server falls back to the
    // SFU, so the person sees "connecting" meanwhile.
    const direct = this.direct?.state === 'failed' ? 'connecting' : this.direct?.state;
    if (this.directActive) return direct;
    if (!this.pub) return this.mode === 'p2p' && !this.direct ? 'connected' : (direct || 'new');
    const s = [this.#states.publish];
    if (this.sub) s.push(this.#states.subscribe);
    for (const w of ['failed', 'disconnected', 'connecting', 'new']) {
      if (s.includes(w)) return w;
    }
    return 'connected';
  }

  #shut(pc) {
    pc.onconnectionstatechange = null;
    pc.onicecandidate = null;
    pc.ontrack = null;
    pc.close();
  }

  close() {
    this.#closed = true;
    this.direct?.close();
    this.#retired?.close();
    for (const pc of [this.pub, this.sub]) if (pc) this.#shut(pc);
  }
}
