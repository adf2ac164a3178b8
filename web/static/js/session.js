// MediaSession is a live participant's two PeerConnections with the SFU:
//   publish:   this page offers, sends its microphone and camera;
//   subscribe: the server offers, this page answers and receives the
//              others' tracks (one offer per change in the room).
// Candidates travel with pc:"publish"|"subscribe" and target:"server".
//
// Each transceiver is created once and kept: switching camera, muting the
// camera or sharing the screen is RTCRtpSender.replaceTrack, which needs
// no new offer. That is also why a missing device still gets a (trackless)
// transceiver: plugging one in later needs no renegotiation either.

import { Emitter } from './ui.js';

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

  constructor(signal, iceServers) {
    super();
    this.signal = signal;
    this.config = { iceServers: iceServers || [], bundlePolicy: 'max-bundle' };
  }

  // start opens the publishing connection with the current tracks.
  start({ audio, video, stream }) {
    this.pub = this.#newPC('publish');
    for (const [kind, track] of [['audio', audio], ['video', video]]) {
      const tr = this.pub.addTransceiver(track || kind, { direction: 'sendonly', streams: [stream] });
      this.#senders[kind] = tr.sender;
    }
    this.#pubQ.run(async () => {
      const offer = await this.pub.createOffer();
      await this.pub.setLocalDescription(offer);
      this.signal.send('offer', { target: 'server', sdp: offer.sdp });
    });
  }

  // replace changes what a sender sends, without renegotiating.
  async replace(kind, track) {
    const s = this.#senders[kind];
    if (!s || this.#closed || s.track === track) return;
    try {
      await s.replaceTrack(track);
    } catch (err) {
      console.warn(`replaceTrack(${kind})`, err);
    }
  }

  onAnswer(msg) {
    if (!this.pub) return;
    this.#pubQ.run(() => this.pub.setRemoteDescription({ type: 'answer', sdp: msg.sdp }));
  }

  onOffer(msg) {
    if (this.#closed) return;
    if (!this.sub) {
      this.sub = this.#newPC('subscribe');
      this.sub.ontrack = (ev) => this.emit('track', ev.track, ev.streams[0] || null);
    }
    this.#subQ.run(async () => {
      await this.sub.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      const answer = await this.sub.createAnswer();
      await this.sub.setLocalDescription(answer);
      this.signal.send('answer', { target: 'server', sdp: answer.sdp });
    });
  }

  onCandidate(msg) {
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
    };
    return pc;
  }

  // state folds both connections into one word for the person: the worst
  // of the two, since either failing spoils the call.
  get state() {
    const s = [this.#states.publish];
    if (this.sub) s.push(this.#states.subscribe);
    for (const w of ['failed', 'disconnected', 'connecting', 'new']) {
      if (s.includes(w)) return w;
    }
    return 'connected';
  }

  close() {
    this.#closed = true;
    for (const pc of [this.pub, this.sub]) {
      if (!pc) continue;
      pc.onconnectionstatechange = null;
      pc.onicecandidate = null;
      pc.ontrack = null;
      pc.close();
    }
  }
}
