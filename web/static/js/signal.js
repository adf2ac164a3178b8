// Signal is one WebSocket to the server's /ws endpoint. Every message is a
// flat JSON object with a "type" (see protocol/protocol.go); Signal emits
// each one under its type, plus 'open' and 'close'. It never reconnects by
// itself: the app decides whether a dropped socket should be rejoined. The
// one exception is a cluster's redirect, followed here (see #follow).

import { Emitter } from './ui.js';

export function signalURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

export class Signal extends Emitter {
  #ws = null;
  #closedByUs = false;
  #hello = null; // the last join or resume, sent again after a redirect
  #hops = 0;

  constructor(url = signalURL()) {
    super();
    this.url = url;
  }

  get open() {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  // connect resolves once the socket is open, and rejects if it closes
  // first (server down, proxy refusing the upgrade).
  connect() {
    return new Promise((resolve, reject) => this.#open(resolve, reject));
  }

  #open(onOpen, onFail) {
    let opened = false;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      onFail(err); // e.g. a URL the page's policy does not allow
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      opened = true;
      this.emit('open');
      onOpen();
    };
    ws.onmessage = (ev) => { if (this.#ws === ws) this.#receive(ev.data); };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      if (!opened) {
        onFail(new Error(`could not connect (code ${ev.code})`));
        return;
      }
      this.emit('close', { byUs: this.#closedByUs, code: ev.code, reason: ev.reason });
    };
  }

  // #follow goes where a cluster's node sent this socket (the node that
  // holds the room, docs/cluster.md) and says the same join or resume
  // there; the app sees one socket throughout.
  #follow(url) {
    const old = this.#ws;
    this.#ws = null;
    old?.close(1000);
    const lost = (reason) => this.emit('close', { byUs: this.#closedByUs, code: 4001, reason });
    if (++this.#hops > 3 || !/^wss?:\/\//.test(url || '')) {
      lost('bad redirect');
      return;
    }
    this.url = url;
    this.#open(() => { if (this.#hello) this.#ws.send(this.#hello); }, () => lost('the room\'s server cannot be reached'));
  }

  #receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn('signal: ignoring a message that is not JSON');
      return;
    }
    if (typeof msg?.type !== 'string') return;
    if (msg.type === 'redirect') {
      this.#follow(msg.url);
      return;
    }
    if (msg.type === 'joined' || msg.type === 'resumed') this.#hops = 0;
    this.emit(msg.type, msg);
  }

  // send writes {type, ...body}; it reports false when the socket is not
  // open, so the caller can tell that a message was lost.
  send(type, body = {}) {
    if (!this.open) return false;
    const text = JSON.stringify({ type, ...body });
    if (type === 'join' || type === 'resume') this.#hello = text;
    this.#ws.send(text);
    return true;
  }

  // close ends the socket on purpose; the 'close' event says byUs.
  close() {
    this.#closedByUs = true;
    this.#ws?.close(1000);
  }

  // drop ends the socket as if the network had, which makes the app go
  // through its reconnect path (used when a PeerConnection fails).
  drop() {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.close(4000, 'media connection failed');
    this.emit('close', { byUs: false, code: 4000, reason: 'media connection failed' });
  }
}
