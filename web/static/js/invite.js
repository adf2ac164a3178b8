// Invite links: /?room=R&name=N fills the lobby in; &role=host|guest says
// who is joining when the server runs without auth; &autojoin=1 joins at
// once with the default devices. A join token travels in the fragment
// (#token=T: browsers do not send fragments to the server) or, in older
// links, as &token=T. The page keeps the token in this tab's session
// storage, so a reload still has it, and takes it out of the address bar
// as soon as it is read.

export function readInvite(loc = location) {
  const q = new URLSearchParams(loc.search);
  const frag = new URLSearchParams(loc.hash.replace(/^#/, ''));
  const flag = (v) => v === '1' || v === 'true' || v === 'yes';
  const room = q.get('room') || '';
  const token = frag.get('token') || q.get('token') || storedToken(room);
  if (token && room) sessionStorage.setItem(tokenKey(room), token);
  const role = q.get('role');
  return {
    room,
    name: q.get('name') || '',
    autojoin: flag(q.get('autojoin')),
    token,
    role: role === 'host' || role === 'guest' ? role : '',
  };
}

const tokenKey = (room) => `consult:token:${room}`;

function storedToken(room) {
  try {
    return (room && sessionStorage.getItem(tokenKey(room))) || '';
  } catch {
    return '';
  }
}

// tokenClaims reads what a token says of its holder (name, role), for the
// lobby to show. The server checks the signature; this only displays.
export function tokenClaims(token) {
  try {
    const body = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const c = JSON.parse(decodeURIComponent(escape(atob(body))));
    return { name: c.name || '', role: c.role === 'host' ? 'host' : 'guest', exp: (c.exp || 0) * 1000 };
  } catch {
    return null;
  }
}

// mintInvite asks the server for a guest's invite link to room: with auth
// on, it carries a short-lived guest token (the host's own token pays for
// it); without, it says role=guest.
export async function mintInvite(room, hostToken) {
  const res = await fetch('/api/invites', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(hostToken ? { Authorization: `Bearer ${hostToken}` } : {}) },
    body: JSON.stringify({ room }),
  });
  if (!res.ok) throw new Error(res.status === 401 ? 'Only a clinician can invite people to this consultation.' : `The server said ${res.status}.`);
  const inv = await res.json();
  return new URL(inv.path, location.href).href;
}

// newRoomName suggests an unguessable room for a new consultation.
export function newRoomName() {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789'; // no 0/o, 1/l look-alikes
  const b = crypto.getRandomValues(new Uint8Array(10));
  let s = '';
  for (const x of b) s += alphabet[x % alphabet.length];
  return `consult-${s.slice(0, 5)}-${s.slice(5)}`;
}

// showRoomInAddress keeps the address bar a link to this room (and the
// role, which is no secret), without autojoin, so that a reload lands in
// the lobby instead of in the call, and without the token.
export function showRoomInAddress(room, role = '') {
  const u = new URL(location.href);
  u.searchParams.set('room', room);
  u.searchParams.delete('autojoin');
  u.searchParams.delete('token');
  if (role) u.searchParams.set('role', role);
  u.hash = '';
  history.replaceState(null, '', u);
}

// scrubToken takes a token out of the address bar (query or fragment), so
// it is not left in history, bookmarks or a screen share.
export function scrubToken() {
  const u = new URL(location.href);
  const frag = new URLSearchParams(u.hash.replace(/^#/, ''));
  if (!u.searchParams.has('token') && !frag.has('token')) return;
  u.searchParams.delete('token');
  frag.delete('token');
  u.hash = frag.toString();
  history.replaceState(null, '', u);
}
