// Entry point: builds the client's parts and wires them together. Each
// part talks to the others through the callbacks given here, so the
// modules do not import one another in circles.

import { toast } from './ui.js';
import { LocalMedia } from './media.js';
import { Roster } from './roster.js';
import { Stage } from './stage.js';
import { Lobby } from './lobby.js';
import { People } from './people.js';
import { RingFlow } from './ring.js';
import { Controls } from './controls.js';
import { RoomView } from './room.js';
import { Devices, loadPrefs, savePrefs } from './devices.js';
import { App } from './app.js';
import { readInvite, newRoomName, scrubToken } from './invite.js';
import { setOutput, unlockAudio } from './sound.js';
import { HostTools } from './host.js';
import { EndedView } from './ended.js';
import { Chat } from './chat.js';
import { QualityView } from './quality.js';
import { RecordConsent } from './consent.js';

const invite = readInvite();
scrubToken(); // the token is kept in this tab's session storage, not in the address bar
const prefs = loadPrefs();
const media = new LocalMedia(prefs);
const roster = new Roster();
const stage = new Stage(roster, media);

// app is created last; the callbacks below only run after that.
let app = null;
const problem = (p) => toast(`${p.title}. ${p.text}`, { tone: 'error', timeout: 12000 });

const lobby = new Lobby(media, {
  onJoin: (v) => {
    unlockAudio(); // the click lets the ring tone play later
    prefs.name = v.name;
    savePrefs(prefs);
    app.join({ ...v, token: invite.token });
  },
  onRetryMedia: () => startMedia(),
});
const host = new HostTools(roster, {
  send: (type, body) => app?.signal?.send(type, body) ?? false,
  onLeave: () => app.leaveConsult(),
  onEnd: () => app.end(),
});
const people = new People(roster, {
  onCall: (id) => ring.call(id),
  onCancel: (id) => ring.cancel(id),
  host,
});
const ring = new RingFlow({ signal: null, roster, people, onAccepted: () => app.goLive() });
const controls = new Controls(media, {
  sendMute: (kind, muted) => app?.sendMute(kind, muted) ?? false,
  hangup: () => app.hangup(),
  onProblem: problem,
  stage,
});
const room = new RoomView({ media, onRejoin: () => app.rejoinLive(), onLeave: () => app.leave() });
const devices = new Devices(media, prefs, { onSink: (id) => stage.setSink(id), onProblem: problem });
const ended = new EndedView({ onBack: () => app.leave() });
const chat = new Chat(roster, { send: (type, body) => app?.signal?.send(type, body) ?? false });
const quality = new QualityView(stage, roster);
const consent = new RecordConsent(roster, { send: (type, body) => app?.signal?.send(type, body) ?? false });
app = new App({ media, roster, stage, view: { lobby, ring, controls, room, ended, chat, quality, consent } });
app.host = host;
// A handle for the browser console (and the browser tests): which media
// path is in use, which connections are open.
window.consultApp = app;

async function startMedia() {
  const p = await media.start();
  lobby.notice(p);
  await devices.refresh();
  controls.render();
}

lobby.setInvite(invite);
lobby.show({ room: invite.room || newRoomName(), name: invite.name || prefs.name || '' });
if (prefs.spk) {
  stage.setSink(prefs.spk);
  setOutput(prefs.spk);
}
await startMedia();
if (invite.autojoin && lobby.validate()) {
  app.join({ ...lobby.values(), live: true, token: invite.token });
}
