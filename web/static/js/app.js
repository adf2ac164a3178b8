// App is the client's life cycle: lobby → joining → waiting or live, and
// back, or to the ended screen. It owns the WebSocket and the media
// session and routes server messages to the roster, the stage and the ring
// flow. When the socket drops it resumes the session on a new one, media
// untouched, or joins afresh once the server no longer has it
// (reconnect.js), unless the server said goodbye for good (the consult
// ended, a clinician removed this person, the invite expired).

import { $, toast } from './ui.js';
import { Signal } from './signal.js';
import { MediaSession } from './session.js';
import { StatsMonitor } from './stats.js';
import { ViewReporter } from './views.js';
import { videoCodecs } from './codecs.js';
import { showRoomInAddress } from './invite.js';
import { endedText, GOODBYES } from './ended.js';
import { resumeDelay, tryResume, sayLeave } from './reconnect.js';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;

const JOIN_ERRORS = {
  'room-full': 'The call is full right now. Choose "Wait to be called" to be let in when there is room.',
  unauthorized: 'This link does not let you in (it may have expired, or it is for another room). Ask the clinic for a new invite link.',
  forbidden: 'This link does not let you into this room. Ask the clinic for a new invite link.',
  'bad-request': 'The server could not accept these details. Check your name and the room, then try again.',
  'server-busy': 'The service is very busy right now. Please wait a minute, then press Join again.',
  'server-draining': 'This server is about to restart. Please wait a moment, then press Join again.',
};

export class App {
  state = 'lobby'; // lobby | joining | waiting | live | reconnecting
  intent = null; // {room, name, live, token}: what to (re)join
  signal = null;
  session = null;
  stats = null;
  views = null; // ViewReporter, with simulcast
  #attempt = 0;
  #retryTimer = null;
  #retryAt = 0;
  #localStream = new MediaStream(); // its id names our stream to the server
  goodbye = ''; // the server's reason when it said goodbye (restart)
  #final = false; // the server said goodbye for good: no rejoining
  #resume = { token: '', graceMs: 0 }; // from joined and resumed
  #away = null; // {since, before}: the socket dropped at since, the page was in state before

  constructor({ media, roster, stage, view }) {
    this.media = media;
    this.roster = roster;
    this.stage = stage;
    this.view = view; // {lobby, ring, controls, room, ended}
    // A remote picture moved from one track to another: if that was a
    // change of media path, tell the server how long the picture stalled.
    $('grid').addEventListener('video-switch', (ev) => {
      const { from, to, gapMs } = ev.detail;
      const s = this.session;
      if (!s || s.pathOf(from) === s.pathOf(to)) return;
      this.signal?.send('path-switch', { from: s.pathOf(from), to: s.pathOf(to), gapMs });
    });
    media.on('audio', (t) => this.session?.replace('audio', t));
    media.on('video', (t) => this.session?.replace('video', t));
    media.on('screen', (t) => this.session?.replace('screen', t));
    // A new network: the paths it broke restart ICE (checked a moment
    // later, when the change has settled), and a socket that is down tries
    // again now.
    const networkChanged = () => {
      setTimeout(() => this.session?.checkPaths(), 1000);
      if (this.state === 'reconnecting') this.#retryNow();
    };
    window.addEventListener('online', networkChanged);
    navigator.connection?.addEventListener?.('change', networkChanged);
    window.addEventListener('pagehide', () => {
      if (this.signal?.open) this.signal.send('leave');
      this.signal?.close();
    });
    // Back to a page kept in the back-forward cache: its socket and media
    // are gone, so start afresh.
    window.addEventListener('pageshow', (ev) => { if (ev.persisted) location.reload(); });
  }

  // join connects and joins from the lobby.
  async join(intent) {
    this.intent = intent;
    this.#final = false;
    this.view.ended.hide();
    this.#setState('joining');
    this.view.lobby.busy(true);
    this.view.lobby.error('');
    if (!(await this.#connect())) {
      this.view.lobby.busy(false);
      this.view.lobby.error('Could not reach the server. Check your connection, then try again.');
      this.#setState('lobby');
    }
  }

  // #connect opens a fresh socket and sends join; the answer arrives as
  // "joined" or an error with ref "join".
  async #connect() {
    const s = new Signal();
    this.#wire(s);
    try {
      await s.connect();
    } catch {
      return false;
    }
    this.signal = s;
    this.view.ring.setSignal(s);
    performance.mark('consult:join');
    s.send('join', this.#joinBody(this.intent.live));
    return true;
  }

  #joinBody(live) {
    const { room, name, token, role } = this.intent;
    return { room, name, live, p2p: true, video: videoCodecs(), ...(token ? { token } : { role: role || 'host' }) };
  }

  #wire(s) {
    const on = (type, fn) => s.on(type, (m) => { if (this.signal === s) fn(m); });
    on('joined', (m) => this.#joined(m));
    on('participant-joined', (m) => this.roster.upsert(m.participant, 'joined'));
    on('participant-updated', (m) => this.#updated(m.participant));
    on('participant-left', (m) => this.roster.remove(m.participant));
    on('track-published', (m) => this.roster.track(m.participant, m.track, true));
    on('track-unpublished', (m) => {
      this.roster.track(m.participant, m.track, false);
      this.stage.removeTrack(m.participant, m.track.id);
      if (m.track.kind === 'video') this.stage.videoPaused(m.participant, false, m.track.source === 'screen'); // a new track starts unpaused
    });
    on('offer', (m) => this.session?.onOffer(m));
    on('answer', (m) => this.session?.onAnswer(m));
    on('candidate', (m) => this.session?.onCandidate(m));
    on('mode', (m) => {
      this.stage.videoPaused(null);
      // On the direct path no media reaches the server: who speaks is
      // this page's own measure until the server says otherwise.
      if (m.mode === 'p2p') this.stage.speakers(null);
      this.session?.onMode(m);
    });
    on('speaker', (m) => { if (!this.session?.directActive) this.stage.speakers(m); });
    on('quality', (m) => this.view.quality.update(m.members));
    on('layers', (m) => this.session?.setLayers(m));
    on('codec', (m) => {
      this.videoCodec = m.video || '';
      this.session?.setVideoCodec(this.videoCodec);
    });
    on('track-paused', (m) => {
      if (m.kind !== 'video') return;
      const screen = this.roster.get(m.participant)?.tracks?.some((t) => t.id === m.track && t.source === 'screen');
      this.stage.videoPaused(m.participant, m.paused, !!screen);
    });
    on('call', (m) => this.view.ring.onCall(m));
    on('recording', (m) => this.#recording(m));
    on('consent-request', (m) => this.view.consent.request(m));
    on('record-state', (m) => this.view.consent.state(m));
    on('chat', (m) => this.view.chat.add(m.message));
    on('error', (m) => this.#error(m));
    on('ended', (m) => this.#ended(m));
    on('muted', (m) => this.#mutedByHost(m));
    on('token-expiring', () => this.view.room.banner('Your access to this consultation ends in about a minute.'));
    on('refreshed', () => this.view.room.banner(null));
    on('goodbye', (m) => this.#goodbye(m));
    // The server saw this path go silent; it may be back by now.
    on('ice-restart', (m) => this.session?.checkPaths([m.pc]));
    on('close', (ev) => { if (!ev.byUs) this.#lost(); });
  }

  #joined(j) {
    this.#attempt = 0;
    this.#away = null;
    this.#resume = { token: j.resumeToken || '', graceMs: j.resumeGraceMs || 0 };
    this.roster.reset(j, this.intent.name);
    this.view.chat.reset(j.chat);
    this.canPublish = j.canPublish !== false;
    this.iceServers = j.iceServers || [];
    this.simulcast = !!j.simulcast;
    this.videoCodec = j.videoCodec || '';
    showRoomInAddress(this.intent.room, this.intent.token ? '' : this.intent.role);
    this.view.lobby.busy(false);
    this.view.lobby.hide();
    this.view.room.show(this.intent.room, { role: j.role, token: this.intent.token });
    this.view.room.banner(null);
    this.view.room.recording(!!j.recording);
    this.view.consent.joined(j.role, !!j.recording);
    // The server starts everyone unmuted; tell it what is true.
    this.view.controls.joined();
    if (j.live) this.#goLive(j.mode || 'sfu');
    else this.#toWaiting(false);
  }

  #recording(m) {
    const was = !$('rec').hidden;
    this.view.room.recording(m.active);
    this.view.consent.recording(m.active);
    if (m.active && !was) toast('This consultation is now being recorded', { tone: 'warn' });
    else if (!m.active && was) toast(m.error ? `Recording stopped: ${m.error}` : 'Recording stopped');
  }

  #updated(p) {
    if (p.id !== this.roster.me.id) {
      this.roster.upsert(p, 'updated');
      return;
    }
    // A clinician let us in, or took us back to the waiting room (or the
    // media failed to start).
    if (p.live && this.state === 'waiting') {
      toast('You are now in the consultation', { tone: 'ok' });
      this.goLive();
    } else if (!p.live && this.state === 'live') {
      toast('You are back in the waiting room', { tone: 'warn' });
      this.#toWaiting(false, 'moved');
    }
  }

  // #mutedByHost follows a clinician who turned our microphone or camera
  // off; only we can turn it back on.
  #mutedByHost(m) {
    const who = this.roster.name(m.by);
    if (m.kind === 'audio') this.media.setMic(false);
    else this.media.setCam(false);
    toast(`${who === 'Someone' ? 'The clinician' : who} turned your ${m.kind === 'audio' ? 'microphone' : 'camera'} off. You can turn it back on.`, { tone: 'warn' });
  }

  // #ended shows the end of the consult; the goodbye that follows closes
  // the socket.
  #ended(m) {
    this.#final = true;
    this.#finish('The consultation has ended', endedText(m, this.roster.me.id));
  }

  #goodbye(m) {
    // Only a restart is "the server restarted"; after any goodbye the
    // session is gone, so there is nothing to resume.
    this.goodbye = m.code === 'shutdown' || !m.code ? m.reason : '';
    this.#resume.token = '';
    const words = GOODBYES[m.code];
    if (!words) return; // a restart: rejoin when the socket closes
    this.#final = true;
    this.#finish(...words, m.code === 'replaced' ? 'Rejoin here' : 'Back to the start');
  }

  // #finish leaves everything and shows the ended screen.
  #finish(title, text, back) {
    clearTimeout(this.#retryTimer);
    this.#stopMedia();
    this.media.stopScreen(); // the consult is over: nothing of the screen goes on
    this.view.ring.reset();
    const s = this.signal;
    this.signal = null;
    s?.close();
    this.roster.clear();
    this.#setState('ended');
    this.view.room.banner(null);
    $('toasts').replaceChildren(); // what was said during the call is over
    this.view.ended.show(title, text, back);
  }

  // goLive starts publishing: after joining live, or when a call to us was
  // accepted (the server has made us live by then).
  // The server follows an accepted call with the room's mode, so the
  // media waits for it.
  goLive() {
    this.intent.live = true;
    this.#goLive('wait');
  }

  #goLive(mode) {
    this.roster.setLive(true);
    this.#setState('live');
    this.#stopMedia();
    const session = new MediaSession(this.signal, this.iceServers, { publish: this.canPublish, simulcast: this.simulcast, videoCodec: this.videoCodec });
    this.session = session;
    session.on('track', (track, stream, owner, source) => this.stage.addTrack(track, stream, owner, source));
    session.on('ended', (track) => this.stage.dropTrack(track));
    session.on('state', (s) => this.#mediaState(s));
    const m = this.media;
    session.start({ audio: m.audioTrack, video: m.videoTrack, stream: this.#localStream, screen: m.screen, screenStream: m.screenStream }, mode);
    this.stats = new StatsMonitor(session);
    if (this.simulcast) {
      this.views = new ViewReporter(this.stage, this.roster, (type, body) => this.signal?.send(type, body),
        () => this.session === session && !session.directActive);
      this.views.start();
    }
    this.stats.on('levels', (l) => this.stage.levels(l));
    this.stats.on('quality', (q) => {
      this.view.room.quality(q);
      // The server sees the SFU path itself; the direct one only we see.
      if (session.directActive && q.level !== 'unknown') {
        const ms = (v) => Math.min(10000, Math.max(0, Math.round(v)));
        this.signal?.send('link-stats', { rttMs: ms((q.rtt ?? 0) * 1000), loss: Math.min(1, q.loss ?? 0), jitterMs: ms(q.jitterMs ?? 0), relay: !!q.relay });
      }
    });
    this.stats.start();
    this.view.room.connection('connecting');
  }

  #mediaState(s) {
    if (this.state !== 'live') return;
    this.view.room.connection(s);
    // ICE gave up: rejoin from scratch, as after a dropped socket.
    if (s === 'failed') this.signal?.drop();
  }

  #stopMedia() {
    this.stats?.stop();
    this.stats = null;
    this.views?.stop();
    this.views = null;
    this.session?.close();
    this.session = null;
    this.stage.clear();
    this.view.room.quality(null);
    this.view.quality.clear();
  }

  #toWaiting(hungUp, why = '') {
    this.intent.live = false;
    this.#stopMedia();
    // Out of the call: stop capturing the screen; back in, sharing again
    // is a fresh choice.
    this.media.stopScreen();
    this.roster.setLive(false);
    this.#setState('waiting');
    this.view.room.waiting(hungUp, why);
  }

  // hangup is the Leave button: a clinician chooses between leaving and
  // ending the consult for everyone, anyone else leaves.
  hangup() {
    if (this.state === 'reconnecting') {
      this.leaveConsult(); // ending the consult needs the server
      return;
    }
    if (this.state !== 'live') return;
    if (this.roster.me.role === 'host') this.host.askLeave();
    else this.leaveConsult();
  }

  // leaveConsult leaves the room for good, as far as this page goes.
  leaveConsult() {
    this.#farewell();
    this.#finish('You left the consultation', 'You can rejoin with the same link while the consultation goes on.', 'Rejoin');
  }

  // end ends the consultation for everyone (a clinician's choice).
  end() {
    this.signal?.send('end');
  }

  // rejoinLive puts a waiting member back in the call: the protocol has
  // no "go live" message for oneself, so leave and join again live.
  rejoinLive() {
    if (!this.signal?.open) return;
    this.intent.live = true;
    this.signal.send('leave');
    this.signal.send('join', this.#joinBody(true));
  }

  // leave goes back to the lobby; the devices stay open for the preview.
  leave() {
    clearTimeout(this.#retryTimer);
    this.#stopMedia();
    this.view.ring.reset();
    this.#farewell();
    this.signal?.close();
    this.signal = null;
    this.roster.clear();
    this.#setState('lobby');
    this.view.room.hide();
    this.view.ended.hide();
    this.view.lobby.busy(false); // a refused join must not leave "Joining…" behind
    this.view.lobby.show();
  }

  // sendMute reports whether the message went out (it cannot before join).
  sendMute(kind, muted) {
    return !!this.roster.me.id && !!this.signal?.send('mute', { kind, muted });
  }

  #error(e) {
    if (e.ref === 'track-view') {
      // A view is advice; one for a track that just went away is no news.
      console.warn('view:', e.message);
      return;
    }
    if (e.ref === 'chat') {
      this.view.chat.error(e.message);
      return;
    }
    const joining = e.ref === 'join' && ['joining', 'reconnecting', 'live', 'waiting'].includes(this.state);
    if (joining && e.code === 'room-full' && this.state !== 'joining') {
      // Our seat was taken while we were away: wait instead.
      toast('The call is full right now, so you are in the waiting room.', { tone: 'warn' });
      this.intent.live = false;
      this.signal.send('join', this.#joinBody(false));
      return;
    }
    if (joining) {
      const text = JOIN_ERRORS[e.code] || e.message || 'Could not join.';
      this.leave();
      this.view.lobby.error(text);
      return;
    }
    switch (e.code) {
      case 'rate-limited':
        return;
      case 'invalid-state':
        // A negotiation message that crossed a change of media path: the
        // mode message that follows sets things right.
        if (['offer', 'answer', 'candidate'].includes(e.ref)) {
          console.warn('signaling:', e.message);
          return;
        }
        toast(e.message || e.code, { tone: 'error' });
        return;
      case 'transport-failed':
        this.view.room.banner('The media connection was lost. Reconnecting…');
        return;
      case 'not-found':
        toast('That person has left the room', { tone: 'warn' });
        return;
      case 'not-host':
        toast('Only the clinician can do that.', { tone: 'warn' });
        return;
      default:
        toast(e.message || e.code, { tone: 'error' });
    }
  }

  // #farewell tells the server this person leaves: on the socket, or,
  // while it is down, on one of its own.
  #farewell() {
    if (this.signal?.open) this.signal.send('leave');
    else if (this.#away && this.#resume.token) sayLeave(this.#resume.token);
    this.#away = null;
  }

  // #lost runs when the socket drops without us closing it.
  #lost() {
    if (this.#final || this.state === 'ended') return;
    if (this.state === 'joining') {
      this.signal = null;
      this.view.lobby.busy(false);
      this.view.lobby.error('The connection closed while joining. Please try again.');
      this.#setState('lobby');
      return;
    }
    if (this.state === 'lobby') return;
    this.signal = null;
    if (this.state !== 'reconnecting') {
      // The media and the preview go on; the call may well still flow.
      this.#away = { since: Date.now(), before: this.state };
      this.#attempt = 0;
      this.#setState('reconnecting');
    }
    this.#schedule();
  }

  // #resumable says whether the server should still hold the session.
  #resumable() {
    return !!this.#away && !!this.#resume.token && !this.goodbye
      && Date.now() - this.#away.since < this.#resume.graceMs;
  }

  #schedule() {
    let delay;
    if (this.#resumable()) {
      delay = resumeDelay(this.#attempt++);
    } else {
      const base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.#attempt++);
      delay = Math.round(base * (0.8 + Math.random() * 0.4)); // spread a crowd of rejoins
    }
    this.#retryAt = Date.now() + delay;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#retryNow(), delay);
    this.#countdown();
  }

  #countdown() {
    if (this.state !== 'reconnecting') return;
    const secs = Math.max(0, Math.ceil((this.#retryAt - Date.now()) / 1000));
    const why = this.goodbye ? 'The server restarted.' : 'Connection lost.';
    this.view.room.banner(secs ? `${why} Reconnecting in ${secs} s…` : `${why} Reconnecting…`,
      { label: 'Retry now', run: () => this.#retryNow() });
    if (secs && this.#retryTimer) setTimeout(() => this.#countdown(), 500);
  }

  async #retryNow() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (this.state !== 'reconnecting') return;
    if (this.#busy) {
      this.#again = true; // the network came back during an attempt
      return;
    }
    this.#busy = true;
    this.#again = false;
    try {
      if (this.#resumable()) {
        const r = await tryResume(this.#resume.token, (s) => this.#wire(s), (s, m) => this.#resumed(s, m));
        if (r === 'ok') return;
        if (r === 'expired') this.#resume.token = '';
        if (this.state === 'reconnecting') {
          if (!this.#resumable()) this.#rejoin();
          else if (this.#again) setTimeout(() => this.#retryNow(), 0);
          else this.#schedule();
        }
        return;
      }
      await this.#rejoin();
    } finally {
      this.#busy = false;
    }
  }

  #busy = false; // an attempt is under way
  #again = false; // try again as soon as it ends

  // #resumed makes s the page's socket again: the session, its calls and
  // its media carry on; what was missed follows on s.
  #resumed(s, m) {
    const before = this.#away?.before || 'live';
    this.#away = null;
    this.#attempt = 0;
    this.#resume.token = m.resumeToken || '';
    this.signal = s;
    this.view.ring.setSignal(s);
    this.session?.setSignal(s);
    this.#setState(before);
    this.view.room.banner(null);
    if (this.session) this.view.room.connection(this.session.state);
    else this.view.room.connection('waiting');
    if (m.addressChanged) this.session?.restartIce();
    // What changed while the socket was down (a share stopped, a mute).
    this.view.controls.syncMute();
  }

  // #rejoin starts over: a fresh join, as after a server restart.
  async #rejoin() {
    this.#away = null;
    this.view.ring.reset();
    this.#stopMedia();
    this.#setState('reconnecting');
    this.view.room.banner(this.goodbye ? 'The server restarted. Reconnecting…' : 'Connection lost. Reconnecting…');
    if (!(await this.#connect())) {
      if (this.state === 'reconnecting') this.#schedule();
    } else {
      this.goodbye = '';
    }
  }

  #setState(s) {
    this.state = s;
    if (s === 'reconnecting') this.view.room.connection('reconnecting');
    this.view.controls.active = s === 'live' || s === 'waiting';
    $('room-view').dataset.state = s;
    // While the session waits to be resumed its media may well still
    // flow: the banner says what is going on, the pictures stay in view.
    $('room-view').dataset.resuming = String(s === 'reconnecting' && !!this.session);
  }
}
