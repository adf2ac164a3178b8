// Invite links: /?room=R&name=N fills the lobby in; &autojoin=1 joins the
// call at once with the default devices; &token=T carries a join token
// when the server requires one. The link shared with others names only
// the room: each person types their own name.

export function readInvite(search = location.search) {
  const q = new URLSearchParams(search);
  const flag = (v) => v === '1' || v === 'true' || v === 'yes';
  return {
    room: q.get('room') || '',
    name: q.get('name') || '',
    autojoin: flag(q.get('autojoin')),
    token: q.get('token') || '',
  };
}

export function inviteLink(room) {
  const u = new URL('/', location.href);
  u.searchParams.set('room', room);
  return u.href;
}

// newRoomName suggests an unguessable room for a new consultation.
export function newRoomName() {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789'; // no 0/o, 1/l look-alikes
  const b = crypto.getRandomValues(new Uint8Array(10));
  let s = '';
  for (const x of b) s += alphabet[x % alphabet.length];
  return `consult-${s.slice(0, 5)}-${s.slice(5)}`;
}

// showRoomInAddress keeps the address bar a link to this room, without
// autojoin, so that a reload lands in the lobby instead of in the call.
export function showRoomInAddress(room) {
  const u = new URL(location.href);
  u.searchParams.set('room', room);
  u.searchParams.delete('autojoin');
  history.replaceState(null, '', u);
}
