package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"consult/protocol"
	"consult/signaling"
)

// tokenCmd mints a join token: consult token -secret S -room R -identity I.
func tokenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("consult token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", os.Getenv("CONSULT_AUTH_SECRET"), "the server's -auth-secret")
	room := fs.String("room", "", `room the token admits to ("*" for any)`)
	identity := fs.String("identity", "", "user id (token subject)")
	name := fs.String("name", "", "display name shown to others (optional)")
	ttl := fs.Duration("ttl", time.Hour, "validity")
	publish := fs.Bool("publish", true, "may publish media")
	subscribe := fs.Bool("subscribe", true, "may receive media")
	admin := fs.Bool("admin", false, `may use the HTTP APIs for the room ("*": every room): members, policy, recordings`)
	role := fs.String("role", protocol.RoleGuest, `"host" (clinician, staff: admits, records, ends) or "guest" (patient, family, interpreter: waits to be let in)`)
	direct := fs.Bool("direct-entry", false, "a guest skips the waiting room")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *secret == "" || *room == "" || *identity == "" {
		fmt.Fprintln(stderr, "consult token: -secret, -room and -identity are required")
		return 2
	}
	if *role != protocol.RoleHost && *role != protocol.RoleGuest {
		fmt.Fprintln(stderr, `consult token: -role must be "host" or "guest"`)
		return 2
	}
	tok, err := signaling.MintToken([]byte(*secret), signaling.TokenSpec{Room: *room, Identity: *identity, Name: *name,
		Role: *role, DirectEntry: *direct, Grants: signaling.Grants{Publish: *publish, Subscribe: *subscribe, Admin: *admin},
		TTL: *ttl}, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
