// Signal is one WebSocket to the server's /ws endpoint. Every message is a
// flat JSON object with a "type" (see protocol/protocol.go); Signal emits
// each one under its type, plus 'open' and 'close'. It never reconnects by
// itself: the app decides whether a dropped socket should be rejoined.

import { Emitter } from './ui.js';

export function signalURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

export class Signal extends Emitter {
  #ws = null;
  #closedByUs = false;

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
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new WebSocket(this.url);
      this.#ws = ws;
      ws.onopen = () => {
        opened = true;
        this.emit('open');
        resolve();
      };
      ws.onmessage = (ev) => this.#receive(ev.data);
      ws.onclose = (ev) => {
        if (this.#ws !== ws) return;
        this.#ws = null;
        if (!opened) {
          reject(new Error(`could not connect (code ${ev.code})`));
          return;
        }
        this.emit('close', { byUs: this.#closedByUs, code: ev.code, reason: ev.reason });
      };
    });
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
    this.emit(msg.type, msg);
  }

  // send writes {type, ...body}; it reports false when the socket is not
  // open, so the caller can tell that a message was lost.
  send(type, body = {}) {
    if (!this.open) return false;
    this.#ws.send(JSON.stringify({ type, ...body }));
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
