// Package turn runs the embedded TURN/STUN server and produces the ICE server
// entries (with short-lived credentials) that the signaling layer hands to
// clients.
//
// The server is pion/turn with three things added that pion leaves to its
// users, each of which coturn does by default and which a deployment on a
// public address cannot do without:
//
//   - TURN REST credentials (coturn's use-auth-secret/static-auth-secret), so
//     the same secret and the same client code work whether the relay is this
//     server or an external coturn.
//   - A relay policy: pion relays to any address unless told otherwise, which
//     turns an open TURN port into a proxy into the server's own network
//     (coturn's CVE-2020-26262). See peerAllowed.
//   - Allocation quotas, a lifetime cap and per-allocation byte accounting,
//     done in our own relay address generator because that is the one place
//     pion lets us see every relay socket open and close.
//
// TCP relay allocations (RFC 6062) are refused: WebRTC never asks for them,
// and not having them removes outbound TCP connections from the attack
// surface. TURN over TCP and TLS to this server (with UDP relays) works.
package turn
