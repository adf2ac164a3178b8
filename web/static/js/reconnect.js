// The way back after the signaling socket dropped (docs/protocol.md,
// "Resume"). While the server keeps the session (the grace period it gave
// in joined), the page resumes it: at once, then after 250 ms, 1 s, and
// every 2 s, so a blip or a Wi-Fi hand-over costs a moment, not a rejoin.
// Resumed, the page carries on where it was: same id, same calls, the
// media untouched; the server sends what it missed. Once the server no
// longer knows the session (resume-expired, or it restarted) or the grace
// period is over, the page joins afresh, with a backoff.

import { Signal } from './signal.js';

const RESUME_DELAYS_MS = [0, 250, 1000];
const RESUME_EVERY_MS = 2000;
const RESUME_ANSWER_MS = 5000;

// resumeDelay is the wait before resume attempt n (0-based).
export function resumeDelay(n) {
  return n < RESUME_DELAYS_MS.length ? RESUME_DELAYS_MS[n] : RESUME_EVERY_MS;
}

// tryResume opens a socket, wires it (wire(s) registers the app's
// handlers, which ignore a socket that is not the app's), and presents
// token. onResumed(s, msg) runs at the resumed message, before the missed
// messages behind it are handled, and must make s the app's socket. It
// resolves to 'ok', 'expired' (join afresh) or 'unreachable' (try again).
export async function tryResume(token, wire, onResumed) {
  const s = new Signal();
  wire(s);
  try {
    await s.connect();
  } catch {
    return 'unreachable';
  }
  return new Promise((resolve) => {
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      offs.forEach((off) => off());
      if (result !== 'ok') s.close();
      resolve(result);
    };
    const offs = [
      s.on('resumed', (m) => {
        onResumed(s, m);
        finish('ok');
      }),
      s.on('error', (e) => {
        if (e.ref === 'resume') finish(e.code === 'resume-expired' ? 'expired' : 'unreachable');
      }),
      s.on('close', () => finish('unreachable')),
    ];
    const timer = setTimeout(() => finish('unreachable'), RESUME_ANSWER_MS);
    s.send('resume', { token });
  });
}

// sayLeave tells the server, on a socket of its own, that an away session
// is over (Leave pressed while reconnecting), so the others are not left
// looking at someone reconnecting.
export function sayLeave(token) {
  const s = new Signal();
  s.on('resumed', () => { // after any redirect to the session's node
    s.send('leave');
    setTimeout(() => s.close(), 1000);
  });
  s.connect().then(() => {
    s.send('resume', { token });
    setTimeout(() => s.close(), 5000); // the session was gone: nothing to leave
  }, () => {});
}
