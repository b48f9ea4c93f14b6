package dns

import (
	"fmt"
	"net"
	"time"

	mdns "github.com/miekg/dns"
)

// resolvConf is where the default nameservers are read from.
const resolvConf = "/etc/resolv.conf"

// fallbackServer is used when resolv.conf names no nameserver.
const fallbackServer = "127.0.0.1:53"

// Options configures a Resolver. The zero value is usable: every field has a
// default, applied by EnsureDefaults.
type Options struct {
	// Servers are the recursive nameservers to ask, as "host:port". A query
	// starts with the server that answered the previous one (the first at
	// start) and moves to the next on any failure. The default value is the "nameserver" lines of
	// /etc/resolv.conf on port 53, or 127.0.0.1:53 when there are none.
	Servers []string

	// Timeout bounds each query attempt on one server. The default value is
	// 3s.
	Timeout time.Duration

	// Attempts is how many rounds over Servers a query makes before it fails
	// temporarily. The default value is 2.
	Attempts int

	// MaxEntries bounds the number of cached answers; the least recently
	// used is evicted first. The default value is 100000.
	MaxEntries int

	// Now is the clock that ages cached answers, injectable for tests. The
	// default value is time.Now.
	Now func() time.Time
}

// EnsureDefaults fills every zero field of o with its default value.
func (o *Options) EnsureDefaults() {
	if len(o.Servers) == 0 {
		o.Servers = serversFromResolvConf(resolvConf)
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Attempts == 0 {
		o.Attempts = 2
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = 100000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first invalid field of o, after defaults are applied.
func (o *Options) Validate() error {
	if len(o.Servers) == 0 {
		return fmt.Errorf("dns: options: no servers")
	}
	for _, s := range o.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("dns: options: server %q is not host:port: %w", s, err)
		}
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("dns: options: timeout %v is not positive", o.Timeout)
	}
	if o.Attempts <= 0 {
		return fmt.Errorf("dns: options: attempts %d is not positive", o.Attempts)
	}
	if o.MaxEntries <= 0 {
		return fmt.Errorf("dns: options: max entries %d is not positive", o.MaxEntries)
	}
	return nil
}

// serversFromResolvConf returns the nameservers of a resolv.conf(5) file as
// "host:port", or the loopback fallback when the file is missing or names
// none.
func serversFromResolvConf(path string) []string {
	conf, err := mdns.ClientConfigFromFile(path)
	if err != nil || len(conf.Servers) == 0 {
		return []string{fallbackServer}
	}
	servers := make([]string, len(conf.Servers))
	for i, s := range conf.Servers {
		servers[i] = net.JoinHostPort(s, conf.Port)
	}
	return servers
}
