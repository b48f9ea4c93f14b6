package sim_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"

	"corriere/core/sim"
)

// Example starts a one-provider world, as an end-to-end test would, and
// delivers to it from the MTA's source address 127.0.0.2.
func Example() {
	w := &sim.World{Providers: []sim.Provider{{
		Name:       "libero",
		Style:      "libero",
		Recipients: sim.Recipients{UnknownPrefix: "unknown"},
		Domains: []sim.Domain{{Name: "libero.it", MX: []sim.MX{
			{Host: "smtp-in.libero.it", Preference: 10, IP: "127.0.4.1"},
		}}},
	}}}
	s, err := sim.Start(context.Background(), w, sim.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	conn, err := d.Dial("tcp4", net.JoinHostPort("127.0.4.1", strconv.Itoa(s.MXPort())))
	if err != nil {
		fmt.Println(err)
		return
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	msg := "Subject: Ciao\r\nMessage-ID: <1@negozio-esempio.it>\r\n\r\nCiao!\r\n"
	for _, rcpt := range []string{"mario@libero.it", "unknown.luigi@libero.it"} {
		err := c.SendMail("news@negozio-esempio.it", []string{rcpt}, strings.NewReader(msg))
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			fmt.Printf("%s: %d %v %s\n", rcpt, se.Code, se.EnhancedCode, se.Message)
			_ = c.Reset()
		} else if err == nil {
			fmt.Printf("%s: accepted\n", rcpt)
		}
	}
	for _, d := range s.Deliveries() {
		fmt.Println(d.Provider, d.MXHost, d.Recipient, d.SourceIP, d.MessageID)
	}
	// Output:
	// mario@libero.it: accepted
	// unknown.luigi@libero.it: 550 [5 1 1] <unknown.luigi@libero.it>: recipient rejected: user unknown (IOL UU)
	// libero smtp-in.libero.it mario@libero.it 127.0.0.2 <1@negozio-esempio.it>
}
