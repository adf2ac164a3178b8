// Views (adaptive stream). With simulcast on, the server sends each
// member the layer of a picture that its tile needs, no larger: a small
// tile gets the quarter-size layer, one that cannot be seen (scrolled
// away, or the page in the background) the lowest. So every half second
// this page tells the server how big each remote picture is on its screen
// and whether it can be seen, for the tracks whose view changed. The
// server in turn tells publishers which layers nobody needs, and they stop
// encoding them (MediaSession.setLayers).

const EVERY_MS = 500;
const STEP = 16; // sizes are rounded to this many pixels, so a drag sends little

export class ViewReporter {
  #timer = null;
  #sent = new Map(); // track id -> what was last said of it

  // send(type, body) sends a message; active() says whether the server
  // carries the media now (not on the direct path).
  constructor(stage, roster, send, active) {
    this.stage = stage;
    this.roster = roster;
    this.send = send;
    this.active = active;
  }

  start() {
    if (!this.#timer) this.#timer = setInterval(() => this.#report(), EVERY_MS);
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
    this.#sent.clear();
  }

  #report() {
    if (!this.active()) {
      this.#sent.clear(); // said again when the server carries it again
      return;
    }
    const hidden = document.visibilityState === 'hidden';
    const seen = new Set();
    for (const [screen, tiles] of [[false, this.stage.tiles], [true, this.stage.screens]]) {
      for (const [id, tile] of tiles) {
        if (tile.local) continue;
        const track = this.roster.get(id)?.tracks?.find((t) => t.kind === 'video' && (t.source === 'screen') === screen);
        // Not before its first frame: the server has no track to send
        // this page until then, and would answer "not found".
        if (!track || !tile.video.videoWidth) continue;
        seen.add(track.id);
        const v = tile.view(hidden, STEP);
        const key = `${v.width}x${v.height}:${v.visible}`;
        if (this.#sent.get(track.id) === key) continue;
        this.#sent.set(track.id, key);
        this.send('track-view', { track: track.id, ...v });
      }
    }
    for (const id of this.#sent.keys()) if (!seen.has(id)) this.#sent.delete(id);
  }
}
