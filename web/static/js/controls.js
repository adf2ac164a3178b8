// Controls is the bar under the call: microphone, camera, screen sharing,
// layout (grid or speaker view), picture-in-picture, devices, people,
// leave; on a phone the less used ones open from "More". Muting changes the local track at once; the room
// learns with a "mute" message whenever what we send changes, which is what
// others' indicators show: "video muted" means the camera sends no
// picture, and a screen share is announced on its own (kind "screen").

import { $, setPressed, toast } from './ui.js';

export class Controls {
  constructor(media, { sendMute, hangup, onProblem, stage }) {
    this.media = media;
    this.stage = stage;
    this.sendMute = sendMute;
    this.onProblem = onProblem;
    this.mic = $('btn-mic');
    this.cam = $('btn-cam');
    this.share = $('btn-share');
    this.mic.addEventListener('click', () => this.toggleMic());
    this.cam.addEventListener('click', () => this.toggleCam());
    this.share.addEventListener('click', () => this.toggleShare());
    $('btn-hangup').addEventListener('click', () => hangup());
    this.layoutBtn = $('btn-layout');
    this.layoutBtn.addEventListener('click', () => this.toggleLayout());
    this.pip = $('btn-pip');
    this.pip.hidden = !document.pictureInPictureEnabled;
    this.pip.addEventListener('click', () => this.togglePip());
    const more = $('btn-more');
    const setMore = (open) => {
      more.setAttribute('aria-expanded', String(open));
      more.closest('.controls').dataset.more = String(open);
    };
    more.addEventListener('click', () => setMore(more.getAttribute('aria-expanded') !== 'true'));
    // A choice made in the "More" row closes it; focus goes back to More
    // rather than to a button that just went out of sight (a dialog opened
    // from the row gives focus back there too).
    const extra = $('ctl-extra');
    extra.addEventListener('click', (ev) => {
      const b = ev.target.closest('button');
      if (!b || more.getAttribute('aria-expanded') !== 'true') return;
      setMore(false);
      if (b.offsetParent === null) more.focus();
    });
    extra.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || more.getAttribute('aria-expanded') !== 'true') return;
      setMore(false);
      more.focus();
    });
    for (const ev of ['state', 'preview', 'audio', 'video', 'screen']) {
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
  #told = { audio: false, video: false, screen: true }; // what the server believes (screen: not shared)

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

  // toggleLayout switches between the grid and speaker view.
  toggleLayout() {
    const speaker = this.stage.view !== 'speaker';
    this.stage.setView(speaker ? 'speaker' : 'grid');
    // The name stays; pressed says which view is on.
    setPressed(this.layoutBtn, speaker, 'Speaker view');
  }

  // togglePip pops the main picture (in the grid, the first other
  // person's) out into a floating window, or takes it back.
  async togglePip() {
    try {
      if (document.pictureInPictureElement) {
        await document.exitPictureInPicture();
        return;
      }
      const tile = this.stage.mainTile() || [...this.stage.tiles.values()][0];
      if (!tile?.video.srcObject) {
        toast('There is no picture to pop out yet');
        return;
      }
      await tile.video.requestPictureInPicture();
    } catch (err) {
      toast(`Could not pop out the picture: ${err.message || err}`, { tone: 'warn' });
    }
  }

  // muteState is what the room should know about us right now.
  muteState() {
    const m = this.media;
    return { audio: !m.micOn || !m.mic, video: !m.videoTrack, screen: !m.screen };
  }

  // joined resets what the server believes (a new member starts unmuted)
  // and tells it the truth.
  joined() {
    this.#told = { audio: false, video: false, screen: true };
    this.syncMute();
  }

  syncMute() {
    const now = this.muteState();
    for (const kind of ['audio', 'video', 'screen']) {
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
