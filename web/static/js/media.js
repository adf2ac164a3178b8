// LocalMedia owns this browser's camera, microphone and screen tracks. The
// rest of the client asks it for "the track to send" of each kind and
// listens to 'audio', 'video' and 'screen' events when that track changes,
// which the session turns into RTCRtpSender.replaceTrack (no
// renegotiation). A shared screen goes out beside the camera, on a sender
// of its own, so the others keep seeing the presenter's face.

import { Emitter } from './ui.js';

const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

// mediaSupport says whether this page can use devices at all. Outside a
// secure context (plain http on anything but localhost) the browser hides
// navigator.mediaDevices entirely.
export function mediaSupport() {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) return 'insecure';
  return 'ok';
}

// describeError turns a getUserMedia/getDisplayMedia failure into words
// for people, not developers.
export function describeError(err, what = 'camera and microphone') {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return {
        code: 'denied',
        title: `Access to your ${what} is blocked`,
        text: 'Allow it in your browser: click the camera or lock icon next to the address, choose Allow, then try again.',
      };
    case 'NotFoundError':
    case 'OverconstrainedError':
      return { code: 'missing', title: `No ${what} found`, text: 'Connect one, or join without it: others will still see and hear what you share.' };
    case 'NotReadableError':
    case 'AbortError':
      return {
        code: 'busy',
        title: `Your ${what} is in use`,
        text: 'Another app or tab is using it. Close that app, then try again.',
      };
    default:
      return { code: 'error', title: `Could not start your ${what}`, text: err?.message || String(err) };
  }
}

export const INSECURE_NOTICE = {
  code: 'insecure',
  title: 'Camera and microphone need a secure connection',
  text: 'This page was not opened with a secure (https://) address, so your browser keeps your camera and '
    + 'microphone off. You can still join to see and hear the others. Please tell the clinic: the link they '
    + 'send should start with https://. (For whoever runs the server: serve HTTPS with a certificate, or start '
    + 'it with -tls-self-signed.)',
};

export class LocalMedia extends Emitter {
  mic = null;
  cam = null;
  screen = null;
  micOn = true; // what the person chose; the track may be missing
  camOn = true;
  prefs;
  status = { audio: 'none', video: 'none' };

  constructor(prefs = {}) {
    super();
    this.prefs = prefs;
  }

  // videoTrack is what goes out on the camera's sender.
  get videoTrack() {
    return this.camOn ? this.cam : null;
  }

  // screenStream holds the shared screen: a stream of its own, since a
  // screen is not lip-synced with the camera.
  screenStream = new MediaStream();

  get audioTrack() {
    return this.mic;
  }

  // start asks for both devices and falls back to whichever one works.
  // It returns the worst problem met (or null), for the lobby to explain.
  async start() {
    if (mediaSupport() !== 'ok') {
      this.status = { audio: 'insecure', video: 'insecure' };
      return INSECURE_NOTICE;
    }
    let problem = null;
    const wantVideo = this.camOn;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: this.#audioC(), video: wantVideo && this.#videoC() });
      this.#adopt(s);
    } catch (err) {
      problem = describeError(err);
      if (problem.code !== 'denied') {
        // One device may be missing or busy while the other works.
        const a = await this.#tryOne('audio');
        const v = wantVideo ? await this.#tryOne('video') : null;
        problem = v || a ? (v && a ? problem : (v || a)) : null;
      } else {
        this.status = { audio: 'denied', video: 'denied' };
      }
    }
    if (this.mic) this.mic.enabled = this.micOn;
    this.emit('audio', this.audioTrack);
    this.emit('video', this.videoTrack);
    this.emit('preview');
    return problem;
  }

  async #tryOne(kind) {
    try {
      const s = await navigator.mediaDevices.getUserMedia({ [kind]: kind === 'audio' ? this.#audioC() : this.#videoC() });
      this.#adopt(s);
      return null;
    } catch (err) {
      const p = describeError(err, kind === 'audio' ? 'microphone' : 'camera');
      this.status[kind] = p.code;
      return p;
    }
  }

  #audioC() {
    return { ...AUDIO, ...(this.prefs.mic ? { deviceId: { ideal: this.prefs.mic } } : {}) };
  }

  #videoC() {
    return { ...VIDEO, ...(this.prefs.cam ? { deviceId: { ideal: this.prefs.cam } } : {}) };
  }

  #adopt(stream) {
    for (const t of stream.getAudioTracks()) {
      this.mic?.stop();
      this.mic = t;
      this.status.audio = 'ok';
      t.addEventListener('ended', () => this.#lost('audio', t));
    }
    for (const t of stream.getVideoTracks()) {
      this.cam?.stop();
      this.cam = t;
      this.status.video = 'ok';
      t.addEventListener('ended', () => this.#lost('video', t));
    }
  }

  // #lost handles a device unplugged mid-call.
  #lost(kind, track) {
    if (kind === 'audio' && this.mic === track) this.mic = null;
    if (kind === 'video' && this.cam === track) this.cam = null;
    this.status[kind] = 'missing';
    this.emit(kind, kind === 'audio' ? this.audioTrack : this.videoTrack);
    this.emit('preview');
    this.emit('lost', kind);
  }

  // setMic mutes by disabling the track: the sender then sends silence,
  // and unmuting is instant.
  setMic(on) {
    this.micOn = on;
    if (this.mic) this.mic.enabled = on;
    this.emit('state');
  }

  // setCam stops the camera when turned off, so its light goes out; turning
  // it on opens it again.
  async setCam(on) {
    this.camOn = on;
    if (!on && this.cam) {
      this.cam.stop();
      this.cam = null;
    }
    let problem = null;
    if (on && !this.cam) problem = await this.#tryOne('video');
    if (problem) this.camOn = false;
    this.emit('video', this.videoTrack);
    this.emit('preview');
    this.emit('state');
    return problem;
  }

  // useDevice switches camera or microphone (kind 'video' or 'audio').
  async useDevice(kind, deviceId) {
    if (kind === 'audio') this.prefs.mic = deviceId;
    else this.prefs.cam = deviceId;
    if (mediaSupport() !== 'ok' || (kind === 'video' && !this.camOn)) return null;
    const c = kind === 'audio' ? this.#audioC() : this.#videoC();
    if (deviceId) c.deviceId = { exact: deviceId };
    try {
      // Release the old device first: some cameras cannot be opened twice.
      if (kind === 'video') this.cam?.stop();
      const s = await navigator.mediaDevices.getUserMedia({ [kind]: c });
      this.#adopt(s);
    } catch (err) {
      const p = describeError(err, kind === 'audio' ? 'microphone' : 'camera');
      this.status[kind] = p.code;
      if (kind === 'video') this.cam = null;
      this.emit(kind, kind === 'audio' ? this.audioTrack : this.videoTrack);
      this.emit('preview');
      return p;
    }
    if (this.mic) this.mic.enabled = this.micOn;
    this.emit(kind, kind === 'audio' ? this.audioTrack : this.videoTrack);
    this.emit('preview');
    return null;
  }

  // shareScreen sends a screen or window beside the camera.
  async shareScreen() {
    if (!navigator.mediaDevices?.getDisplayMedia) {
      return { code: 'unsupported', title: 'Screen sharing is not available', text: 'This browser cannot share its screen.' };
    }
    try {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      const track = s.getVideoTracks()[0];
      // Text and slides: keep the resolution and drop frames under load.
      track.contentHint = 'detail';
      track.addEventListener('ended', () => this.stopScreen());
      this.screen = track;
      for (const t of this.screenStream.getTracks()) this.screenStream.removeTrack(t);
      this.screenStream.addTrack(track);
    } catch (err) {
      if (err?.name === 'NotAllowedError') return null; // the person cancelled the picker
      return describeError(err, 'screen');
    }
    this.emit('screen', this.screen);
    this.emit('state');
    return null;
  }

  stopScreen() {
    if (!this.screen) return;
    this.screen.stop();
    this.screenStream.removeTrack(this.screen);
    this.screen = null;
    this.emit('screen', null);
    this.emit('state');
  }

  // previewStream is what the person sees of themselves: the camera.
  previewStream() {
    return new MediaStream([this.camOn ? this.cam : null].filter(Boolean));
  }

  stopAll() {
    for (const t of [this.mic, this.cam, this.screen]) t?.stop();
    this.mic = this.cam = this.screen = null;
  }
}
