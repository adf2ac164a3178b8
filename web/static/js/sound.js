// Sound made on the page: the ring tones (synthesised, so no audio file
// ships) and the microphone level meter. One AudioContext serves both; it
// is resumed on the first click or key press, since browsers keep it
// suspended until the person has interacted with the page.

let ctx = null;

export function audioContext() {
  if (!ctx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    ctx = new AC();
  }
  return ctx;
}

export function unlockAudio() {
  const c = audioContext();
  if (c && c.state === 'suspended') c.resume().catch(() => {});
}

for (const ev of ['pointerdown', 'keydown']) {
  window.addEventListener(ev, unlockAudio, { capture: true, passive: true });
}

// setOutput sends the ring tones to the chosen speaker where the browser
// lets an AudioContext pick one.
export function setOutput(sinkId) {
  const c = audioContext();
  if (c?.setSinkId) c.setSinkId(sinkId || '').catch(() => {});
}

// tone plays one soft note: a sine with a short attack and a gentle
// release, so it sounds like a chime rather than a beep.
function tone(c, freq, at, dur, gain) {
  const osc = c.createOscillator();
  const g = c.createGain();
  osc.type = 'sine';
  osc.frequency.value = freq;
  g.gain.setValueAtTime(0, at);
  g.gain.linearRampToValueAtTime(gain, at + 0.02);
  g.gain.setTargetAtTime(0, at + dur * 0.6, dur / 4);
  osc.connect(g).connect(c.destination);
  osc.start(at);
  osc.stop(at + dur + 0.4);
}

const PATTERNS = {
  // Incoming: a rising two-note chime, twice, every 3 s.
  incoming: { every: 3000, play: (c, t) => {
    tone(c, 659.3, t, 0.35, 0.18);
    tone(c, 880.0, t + 0.38, 0.5, 0.16);
    tone(c, 659.3, t + 1.0, 0.35, 0.18);
    tone(c, 880.0, t + 1.38, 0.5, 0.16);
  } },
  // Outgoing: a quiet ring-back so the caller knows it is ringing.
  waiting: { every: 0, play: (c, t) => {
    tone(c, 784.0, t, 0.25, 0.14);
    tone(c, 1046.5, t + 0.22, 0.45, 0.12);
  } },
  // A chat message: one short, soft note.
  message: { every: 0, play: (c, t) => tone(c, 987.8, t, 0.18, 0.08) },
  outgoing: { every: 4000, play: (c, t) => {
    tone(c, 440, t, 1.2, 0.05);
    tone(c, 480, t, 1.2, 0.05);
  } },
};

// chime plays a pattern once: a clinician's "someone is waiting".
export function chime(kind = 'waiting') {
  const c = audioContext();
  if (c && c.state === 'running') PATTERNS[kind].play(c, c.currentTime + 0.05);
}

// Ringer repeats a pattern until stopped.
export class Ringer {
  #timer = null;
  constructor(kind) {
    this.pattern = PATTERNS[kind];
  }
  get ringing() {
    return this.#timer !== null;
  }
  start() {
    if (this.#timer) return;
    const ring = () => {
      const c = audioContext();
      if (c && c.state === 'running') this.pattern.play(c, c.currentTime + 0.05);
    };
    unlockAudio();
    ring();
    this.#timer = setInterval(ring, this.pattern.every);
  }
  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
  }
}

// LevelMeter measures a microphone track's loudness (0..1) without
// playing it back: an AnalyserNode needs no connection to the speakers.
export class LevelMeter {
  #src = null;
  #an = null;
  #buf = null;
  #track = null;

  setTrack(track) {
    if (track === this.#track) return;
    this.#src?.disconnect();
    this.#src = null;
    this.#track = track;
    const c = audioContext();
    if (!track || !c) return;
    this.#an ||= Object.assign(c.createAnalyser(), { fftSize: 512 });
    this.#buf ||= new Float32Array(this.#an.fftSize);
    this.#src = c.createMediaStreamSource(new MediaStream([track]));
    this.#src.connect(this.#an);
  }

  // level is the RMS of the last few milliseconds, scaled so that normal
  // speech reaches about 0.5.
  level() {
    if (!this.#src || !this.#track?.enabled) return 0;
    this.#an.getFloatTimeDomainData(this.#buf);
    let sum = 0;
    for (const x of this.#buf) sum += x * x;
    return Math.min(1, Math.sqrt(sum / this.#buf.length) * 4);
  }
}
