package tracking

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/luadata"
	"corriere/core/luart"
	"corriere/core/message"
)

// FileName is the name of the plugin's policy file in the rules directory.
const FileName = "tracking.lua"

// Tenant is one tenant's tracking settings.
type Tenant struct {
	// Base is the tracking domain's URL, "https://click.shop.example".
	Base *url.URL
	// Classes are the classes whose mail is tracked.
	Classes []message.Class
	// Opens and Clicks say what is tracked; both by default.
	Opens, Clicks bool
}

// Rules is rules/tracking.lua, read and checked. It is immutable.
type Rules struct {
	// File is the path it was read from.
	File string
	// Tenants are the tenants that track, by name.
	Tenants map[string]*Tenant
	// MachineOpenAgents and MachineOpenNetworks recognise the machines
	// that fetch images on a reader's behalf; ScannerAgents and
	// ScannerNetworks the security scanners that follow links.
	MachineOpenAgents   []string
	MachineOpenNetworks []netip.Prefix
	ScannerAgents       []string
	ScannerNetworks     []netip.Prefix
	// ScannerWindow is how soon after delivery a click is taken for a
	// scanner's.
	ScannerWindow time.Duration
	// DedupWindow is how long a recipient's first open and click are
	// remembered.
	DedupWindow time.Duration
}

// The defaults of rules/tracking.lua.
var (
	// defaultMachineOpenAgents are the user agents of the image proxies of
	// Gmail and Yahoo.
	defaultMachineOpenAgents = []string{"GoogleImageProxy", "YahooMailProxy"}
	// defaultMachineOpenNetworks is Apple's 17.0.0.0/8, from which Mail
	// Privacy Protection fetches every image of every message.
	defaultMachineOpenNetworks = []netip.Prefix{netip.MustParsePrefix("17.0.0.0/8")}
	// defaultScannerAgents are words in the user agents of link scanners.
	defaultScannerAgents = []string{"Barracuda", "Mimecast", "Proofpoint", "urldefense", "SafeLinks", "Bitdefender"}
	defaultScannerWindow = 5 * time.Second
	defaultDedupWindow   = 30 * 24 * time.Hour
)

// tracks returns the settings of tenant when its mail of class c is
// tracked.
func (r *Rules) tracks(tenant string, c message.Class) (*Tenant, bool) {
	if r == nil {
		return nil, false
	}
	t, ok := r.Tenants[tenant]
	if !ok || !slices.Contains(t.Classes, c) {
		return nil, false
	}
	return t, true
}

// Load reads rules/tracking.lua from rulesDir. A missing file is an error
// wrapping fs.ErrNotExist; a wrong one a *luart.ScriptError at the file.
func Load(rulesDir string) (*Rules, error) {
	file := filepath.Join(rulesDir, FileName)
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}
	chunk, err := luadata.Compile(file, src)
	if err != nil {
		return nil, err
	}
	t, err := luadata.Run(chunk, luadata.Options{})
	if err != nil {
		return nil, err
	}
	rd := reader{file: file, line: chunk.ReturnLine()}
	r := &Rules{
		File: file, Tenants: map[string]*Tenant{},
		MachineOpenAgents: defaultMachineOpenAgents, MachineOpenNetworks: defaultMachineOpenNetworks,
		ScannerAgents: defaultScannerAgents, ScannerWindow: defaultScannerWindow, DedupWindow: defaultDedupWindow,
	}
	t.ForEach(func(k, v lua.LValue) {
		if rd.err != nil {
			return
		}
		switch k.String() {
		case "tenants":
			rd.tenants(r, v)
		case "machine_open_agents":
			r.MachineOpenAgents = rd.strings("machine_open_agents", v)
		case "machine_open_networks":
			r.MachineOpenNetworks = rd.networks("machine_open_networks", v)
		case "scanner_agents":
			r.ScannerAgents = rd.strings("scanner_agents", v)
		case "scanner_networks":
			r.ScannerNetworks = rd.networks("scanner_networks", v)
		case "scanner_window":
			r.ScannerWindow = rd.duration("scanner_window", v)
		case "dedup_window":
			r.DedupWindow = rd.duration("dedup_window", v)
		default:
			rd.failf("unknown field %q (known: tenants, machine_open_agents, machine_open_networks, scanner_agents, scanner_networks, scanner_window, dedup_window)", k.String())
		}
	})
	if rd.err != nil {
		return nil, rd.err
	}
	return r, nil
}

// reader turns the returned table into Rules, keeping the first error.
type reader struct {
	file string
	line int
	err  *luart.ScriptError
}

func (rd *reader) failf(format string, args ...any) {
	if rd.err == nil {
		rd.err = &luart.ScriptError{File: rd.file, Line: rd.line, Msg: fmt.Sprintf(format, args...)}
	}
}

func (rd *reader) tenants(r *Rules, v lua.LValue) {
	tt, ok := v.(*lua.LTable)
	if !ok {
		rd.failf("tenants: want a table of tenant = { url = ..., classes = {...} }")
		return
	}
	tt.ForEach(func(k, v lua.LValue) {
		if rd.err != nil {
			return
		}
		name := k.String()
		st, ok := v.(*lua.LTable)
		if !ok {
			rd.failf("tenants[%q]: want a table", name)
			return
		}
		t := &Tenant{Opens: true, Clicks: true}
		st.ForEach(func(k, v lua.LValue) {
			if rd.err != nil {
				return
			}
			field := fmt.Sprintf("tenants[%q].%s", name, k.String())
			switch k.String() {
			case "url":
				u, err := url.Parse(lua.LVAsString(v))
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
					rd.failf("%s: want the tracking domain's URL, such as \"https://click.shop.example\", not %q", field, v.String())
					return
				}
				u.Path = ""
				t.Base = u
			case "classes":
				for _, s := range rd.strings(field, v) {
					c, ok := message.ParseClass(s)
					if !ok {
						rd.failf("%s: unknown class %q (known: %v)", field, s, message.Classes)
						return
					}
					t.Classes = append(t.Classes, c)
				}
			case "opens", "clicks":
				b, ok := v.(lua.LBool)
				if !ok {
					rd.failf("%s: want true or false", field)
					return
				}
				if k.String() == "opens" {
					t.Opens = bool(b)
				} else {
					t.Clicks = bool(b)
				}
			default:
				rd.failf("tenants[%q]: unknown field %q (known: url, classes, opens, clicks)", name, k.String())
			}
		})
		if rd.err == nil && (t.Base == nil || len(t.Classes) == 0) {
			rd.failf("tenants[%q]: needs url and classes: tracking is opt-in per class", name)
		}
		r.Tenants[name] = t
	})
}

func (rd *reader) strings(field string, v lua.LValue) []string {
	t, ok := v.(*lua.LTable)
	if !ok {
		rd.failf("%s: want a list of strings", field)
		return nil
	}
	var out []string
	for i := 1; i <= t.Len(); i++ {
		s, ok := t.RawGetInt(i).(lua.LString)
		if !ok || strings.TrimSpace(string(s)) == "" {
			rd.failf("%s[%d]: want a non-empty string", field, i)
			return nil
		}
		out = append(out, string(s))
	}
	return out
}

func (rd *reader) networks(field string, v lua.LValue) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range rd.strings(field, v) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			rd.failf("%s[%d]: %q is not a network such as 17.0.0.0/8", field, i+1, s)
			return nil
		}
		out = append(out, p.Masked())
	}
	return out
}

func (rd *reader) duration(field string, v lua.LValue) time.Duration {
	d, err := time.ParseDuration(lua.LVAsString(v))
	if err != nil || d < 0 {
		rd.failf("%s: want a duration such as \"5s\", not %q", field, v.String())
		return 0
	}
	return d
}
