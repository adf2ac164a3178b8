// Devices fills the camera, microphone and speaker pickers and applies a
// choice at once, in the lobby as in a call. The same fieldset serves both:
// it moves into the Devices dialog while in the room, so there is one set
// of controls to keep right. Choices are remembered for the next visit.

import { $, h } from './ui.js';
import { mediaSupport } from './media.js';
import { setOutput } from './sound.js';

const KINDS = { videoinput: 'cam', audioinput: 'mic', audiooutput: 'spk' };
const NAMES = { cam: 'Camera', mic: 'Microphone', spk: 'Speaker' };

export const speakerChoice = () => 'setSinkId' in HTMLMediaElement.prototype;

export class Devices {
  constructor(media, prefs, { onSink, onProblem }) {
    this.media = media;
    this.prefs = prefs;
    this.onSink = onSink;
    this.onProblem = onProblem;
    this.fieldset = $('devices');
    this.selects = { cam: $('cam-select'), mic: $('mic-select'), spk: $('spk-select') };
    $('spk-field').hidden = !speakerChoice();
    this.selects.cam.addEventListener('change', () => this.#use('video', this.selects.cam.value));
    this.selects.mic.addEventListener('change', () => this.#use('audio', this.selects.mic.value));
    this.selects.spk.addEventListener('change', () => this.#sink(this.selects.spk.value));
    if (mediaSupport() === 'ok') navigator.mediaDevices.addEventListener('devicechange', () => this.refresh());
    media.on('preview', () => this.refresh());
    const dlg = $('devices-dialog');
    $('btn-devices').addEventListener('click', () => {
      $('devices-slot').append(this.fieldset);
      dlg.showModal();
    });
    $('devices-done').addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => {
      this.home();
      $('btn-devices').focus();
    });
    this.fieldset.disabled = mediaSupport() !== 'ok';
  }

  // home puts the pickers back into the lobby form.
  home() {
    $('join-form').insertBefore(this.fieldset, $('copy-invite'));
  }

  async refresh() {
    if (mediaSupport() !== 'ok') return;
    let list = [];
    try {
      list = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return;
    }
    const current = {
      cam: this.media.cam?.getSettings().deviceId || this.prefs.cam,
      mic: this.media.mic?.getSettings().deviceId || this.prefs.mic,
      spk: this.prefs.spk || '',
    };
    for (const key of Object.values(KINDS)) {
      const sel = this.selects[key];
      const kind = Object.keys(KINDS).find((k) => KINDS[k] === key);
      const devs = list.filter((d) => d.kind === kind && d.deviceId);
      const opts = devs.map((d, i) => h('option', { value: d.deviceId }, d.label || `${NAMES[key]} ${i + 1}`));
      if (!opts.length) {
        opts.push(h('option', { value: '' }, key === 'spk' ? 'System default' : `No ${NAMES[key].toLowerCase()} found`));
      }
      sel.replaceChildren(...opts);
      sel.disabled = !devs.length;
      if (devs.some((d) => d.deviceId === current[key])) sel.value = current[key];
    }
  }

  async #use(kind, id) {
    const problem = await this.media.useDevice(kind, id);
    this.#save(kind === 'audio' ? 'mic' : 'cam', id);
    if (problem) this.onProblem(problem);
  }

  #sink(id) {
    this.#save('spk', id);
    setOutput(id);
    this.onSink(id);
  }

  #save(key, value) {
    this.prefs[key] = value;
    savePrefs(this.prefs);
  }
}

export function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem('consult.prefs')) || {};
  } catch {
    return {};
  }
}

export function savePrefs(p) {
  try {
    localStorage.setItem('consult.prefs', JSON.stringify({ name: p.name, cam: p.cam, mic: p.mic, spk: p.spk }));
  } catch {
    // private mode: the choices simply are not remembered
  }
}
