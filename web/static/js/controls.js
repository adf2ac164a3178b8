// Controls is the bar under the call: microphone, camera, screen sharing,
// devices, people, leave. Muting changes the local track at once; the room
// learns with a "mute" message whenever what we send changes, which is what
// others' indicators show. "Video muted" means "no picture goes out", so
// sharing the screen with the camera off counts as video on.

import { $, setPressed, toast } from './ui.js';

export class Controls {
  constructor(media, { sendMute, hangup, onProblem }) {
    this.media = media;
    this.sendMute = sendMute;
    this.onProblem = onProblem;
    this.mic = $('btn-mic');
    this.cam = $('btn-cam');
    this.share = $('btn-share');
    this.mic.addEventListener('click', () => this.toggleMic());
    this.cam.addEventListener('click', () => this.toggleCam());
    this.share.addEventListener('click', () => this.toggleShare());
    $('btn-hangup').addEventListener('click', () => hangup());
    for (const ev of ['state', 'preview', 'audio', 'video']) {
      media.on(ev, () => {
        this.render();
        this.syncMute();
      });
    }
    media.on('lost', (kind) => {
      toast(kind === 'audio' ? 'Your microphone was disconnected' : 'Your camera was disconnected', { tone: 'warn' });
    });
    // Keyboard shortcuts common to call apps, only when no field has focus.
    window.addEventListener('keydown', (ev) => {
      if (!this.active || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
      if (ev.target.closest?.('input, select, textarea, dialog')) return;
      if (ev.key === 'm') this.toggleMic();
      else if (ev.key === 'v') this.toggleCam();
      else return;
      ev.preventDefault();
    });
  }

  active = false;
  #told = { audio: false, video: false }; // what the server believes

  toggleMic() {
    this.media.setMic(!this.media.micOn);
  }

  async toggleCam() {
    const on = !this.media.camOn;
    this.cam.disabled = true;
    const problem = await this.media.setCam(on);
    this.cam.disabled = false;
    if (problem) this.onProblem(problem);
  }

  async toggleShare() {
    if (this.media.screen) {
      this.media.stopScreen();
      return;
    }
    const problem = await this.media.shareScreen();
    if (problem) this.onProblem(problem);
  }

  // muteState is what the room should know about us right now.
  muteState() {
    const m = this.media;
    return { audio: !m.micOn || !m.mic, video: !m.videoTrack };
  }

  // joined resets what the server believes (a new member starts unmuted)
  // and tells it the truth.
  joined() {
    this.#told = { audio: false, video: false };
    this.syncMute();
  }

  syncMute() {
    const now = this.muteState();
    for (const kind of ['audio', 'video']) {
      if (now[kind] !== this.#told[kind] && this.sendMute(kind, now[kind])) this.#told[kind] = now[kind];
    }
  }

  render() {
    const m = this.media;
    const micOn = m.micOn && !!m.mic;
    const camOn = m.camOn && !!m.cam;
    setPressed(this.mic, !micOn, micOn ? 'Mute microphone' : 'Unmute microphone');
    this.mic.querySelector('.ctl-label').textContent = micOn ? 'Mute' : 'Unmute';
    this.mic.disabled = !m.mic;
    setPressed(this.cam, !camOn, camOn ? 'Turn camera off' : 'Turn camera on');
    this.cam.querySelector('.ctl-label').textContent = camOn ? 'Stop video' : 'Start video';
    const sharing = !!m.screen;
    setPressed(this.share, sharing, sharing ? 'Stop sharing your screen' : 'Share your screen');
    this.share.querySelector('.ctl-label').textContent = sharing ? 'Stop share' : 'Share';
    this.share.hidden = !navigator.mediaDevices?.getDisplayMedia;
    $('room-view').dataset.sharing = String(sharing);
  }
}
