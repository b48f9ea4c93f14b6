package dns

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestServersFromResolvConf(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"testdata/resolv.conf", []string{"192.0.2.1:53", "[2001:db8::1]:53"}},
		{"testdata/resolv-empty.conf", []string{"127.0.0.1:53"}},
		{"testdata/missing.conf", []string{"127.0.0.1:53"}},
	}
	for _, tt := range tests {
		if got := serversFromResolvConf(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("serversFromResolvConf(%s) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestOptions(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	if len(o.Servers) == 0 || o.Timeout != 3*time.Second || o.Attempts != 2 || o.MaxEntries != 100000 || o.Now == nil {
		t.Errorf("defaults: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}

	tests := []struct {
		name string
		opts Options
		err  string
	}{
		{"valid", Options{Servers: []string{"127.0.0.1:53", "[::1]:5353"}}, ""},
		{"no port", Options{Servers: []string{"127.0.0.1"}}, "is not host:port"},
		{"negative timeout", Options{Timeout: -time.Second}, "timeout"},
		{"negative attempts", Options{Attempts: -1}, "attempts"},
		{"negative max entries", Options{MaxEntries: -1}, "max entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("New(%+v) = %v, want error containing %q", tt.opts, err, tt.err)
			}
		})
	}
}
