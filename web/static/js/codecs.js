// Mixed codecs (docs/protocol.md, "Video codec"). Not every device
// decodes every video codec, and through the server each subscriber gets
// the publisher's own stream; so this page says in its join what it can
// decode and encode, and the server names the codec the room's
// publishers send (joined.videoCodec, then codec messages). The page
// puts that codec first on its camera's and screen's transceivers and
// offers again; the server's answer puts it first too, and the browser
// sends it. Every other codec stays in the offer, reordered, not
// removed: the server's connection keeps the codecs of the first offer,
// and the room may choose another later.

const MIME = /^video\/[A-Za-z0-9._-]{1,32}$/;

function names(caps) {
  return [...new Set((caps?.codecs || []).map((c) => c.mimeType))].filter((m) => MIME.test(m)).slice(0, 32);
}

// videoCodecs is the join's statement of this browser's video codecs.
export function videoCodecs() {
  try {
    return { decode: names(RTCRtpReceiver.getCapabilities('video')), encode: names(RTCRtpSender.getCapabilities('video')) };
  } catch {
    return undefined; // the server then assumes VP8 and H.264
  }
}

// preferCodec puts mime (video/… or audio/…) first on the transceiver
// tr; false if this browser has no such codec (nothing changes then).
export function preferCodec(tr, mime) {
  if (!mime || !tr?.setCodecPreferences) return false;
  const kind = mime.toLowerCase().startsWith('audio/') ? 'audio' : 'video';
  const all = RTCRtpReceiver.getCapabilities(kind)?.codecs || [];
  const same = (c) => c.mimeType.toLowerCase() === mime.toLowerCase();
  const first = all.filter(same);
  if (!first.length) return false;
  try {
    tr.setCodecPreferences([...first, ...all.filter((c) => !same(c))]);
    return true;
  } catch (err) {
    console.warn('setCodecPreferences', err);
    return false;
  }
}
