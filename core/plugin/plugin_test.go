package plugin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"corriere/core/extension"
)

// probe is a plugin that records each lifecycle call in the recorder its
// configuration section names, and fails the step named by "fail".
type probe struct {
	id   string
	rec  *recorder
	fail string
	ctx  context.Context
}

// recorder collects the calls of the probes of one test.
type recorder struct {
	calls []string
}

func (p *probe) step(name string) error {
	p.rec.calls = append(p.rec.calls, p.id+"."+name)
	if p.fail == name {
		return errors.New(name + " refused")
	}
	return nil
}

func (p *probe) Provision(ctx *extension.Context) error {
	p.rec, _ = ctx.Config["recorder"].(*recorder)
	p.fail, _ = ctx.Config["fail"].(string)
	ctx.Logger.Info("provisioned")
	return p.step("provision")
}

func (p *probe) Validate() error { return p.step("validate") }

func (p *probe) Start(ctx context.Context) error {
	p.ctx = ctx
	return p.step("start")
}

func (p *probe) Close() error { return p.step("close") }

var (
	_ extension.Provisioner = (*probe)(nil)
	_ extension.Validator   = (*probe)(nil)
	_ extension.Starter     = (*probe)(nil)
)

// The registry is global and -count runs the tests again in one process:
// the test plugins are registered once.
func init() {
	for _, id := range []string{"test.a", "test.b", "test.c"} {
		Register(id, func() any { return &probe{id: id} })
	}
	Register("test.bare", func() any { return new(struct{ n int }) })
}

func TestRegisterRefuses(t *testing.T) {
	factory := func() any { return nil }
	for _, tc := range []struct {
		name string
		id   string
		f    Factory
		want string
	}{
		{"empty id", "", factory, "empty id"},
		{"nil factory", "test.nil", nil, "nil factory"},
		{"duplicate id", "test.a", factory, `"test.a" registered twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatalf("Register(%q) did not panic", tc.id)
				}
				if msg, _ := r.(string); !strings.Contains(msg, tc.want) {
					t.Errorf("panic %v; want it to say %q", r, tc.want)
				}
			}()
			Register(tc.id, tc.f)
		})
	}
	if _, err := New("test.nil"); err == nil {
		t.Error("a refused registration was registered")
	}
}

func TestIDsAreSorted(t *testing.T) {
	ids := IDs()
	if !slices.IsSorted(ids) {
		t.Errorf("IDs() = %v; want sorted", ids)
	}
	for _, id := range []string{"test.a", "test.b", "test.bare", "test.c"} {
		if !slices.Contains(ids, id) {
			t.Errorf("IDs() = %v; want %s in it", ids, id)
		}
	}
}

func TestNewMakesAFreshInstance(t *testing.T) {
	p1, err := New("test.a")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := New("test.a")
	if err != nil {
		t.Fatal(err)
	}
	if p1.(*probe) == p2.(*probe) {
		t.Error("New returned the same instance twice")
	}
	if _, err := New("test.missing"); err == nil || !strings.Contains(err.Error(), `"test.missing" is not registered`) {
		t.Errorf("New(unregistered) = %v; want a not-registered error", err)
	}
}

// TestStartLifecycle: Start takes each plugin through provision, validate
// and start before the next, in the order given; a failure closes, in
// reverse order, the plugins already started, and names the plugin and the
// step.
func TestStartLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ids       []string
		fail      map[string]string // plugin id -> failing step
		wantCalls []string
		wantErr   string
	}{
		{
			name: "all start, in the order given",
			ids:  []string{"test.c", "test.bare", "test.a"},
			wantCalls: []string{
				"test.c.provision", "test.c.validate", "test.c.start",
				"test.a.provision", "test.a.validate", "test.a.start",
			},
		},
		{
			name:    "provision fails",
			ids:     []string{"test.a", "test.b", "test.c"},
			fail:    map[string]string{"test.b": "provision"},
			wantErr: "plugin test.b: provision: provision refused",
			wantCalls: []string{
				"test.a.provision", "test.a.validate", "test.a.start",
				"test.b.provision", "test.a.close",
			},
		},
		{
			name:    "validate fails",
			ids:     []string{"test.a", "test.b"},
			fail:    map[string]string{"test.b": "validate"},
			wantErr: "plugin test.b: validate refused",
			wantCalls: []string{
				"test.a.provision", "test.a.validate", "test.a.start",
				"test.b.provision", "test.b.validate", "test.a.close",
			},
		},
		{
			name:    "start fails",
			ids:     []string{"test.a", "test.b", "test.c"},
			fail:    map[string]string{"test.c": "start"},
			wantErr: "plugin test.c: start: start refused",
			wantCalls: []string{
				"test.a.provision", "test.a.validate", "test.a.start",
				"test.b.provision", "test.b.validate", "test.b.start",
				"test.c.provision", "test.c.validate", "test.c.start",
				"test.b.close", "test.a.close",
			},
		},
		{
			name:      "unknown plugin",
			ids:       []string{"test.a", "test.missing"},
			wantErr:   `"test.missing" is not registered`,
			wantCalls: []string{"test.a.provision", "test.a.validate", "test.a.start", "test.a.close"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			configs := map[string]map[string]any{}
			for _, id := range tc.ids {
				configs[id] = map[string]any{"recorder": rec, "fail": tc.fail[id]}
			}
			var logs bytes.Buffer
			base := extension.Context{RulesDir: "rules", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ps, err := Start(ctx, tc.ids, base, configs)
			if !slices.Equal(rec.calls, tc.wantCalls) {
				t.Errorf("calls:\n got %v\nwant %v", rec.calls, tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Start = %v; want an error saying %q", err, tc.wantErr)
				}
				if ps != nil {
					t.Errorf("Start failed but returned plugins %v", ps)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != len(tc.ids) {
				t.Fatalf("Start returned %d plugins; want %d", len(ps), len(tc.ids))
			}
			for i, id := range tc.ids {
				p, ok := ps[i].(*probe)
				if !ok {
					continue
				}
				if p.id != id || p.ctx != ctx {
					t.Errorf("plugin %d is %s started with %v; want %s started with the context given", i, p.id, p.ctx, id)
				}
				if !strings.Contains(logs.String(), "msg=provisioned plugin="+id) {
					t.Errorf("log %q; want the plugin's logger to name %s", logs.String(), id)
				}
			}
		})
	}
}

// TestCloseInReverseOrder: Close closes every plugin that can be closed,
// the last started first, and returns every error.
func TestCloseInReverseOrder(t *testing.T) {
	rec := &recorder{}
	ps := []any{
		&probe{id: "test.a", rec: rec},
		new(struct{ n int }),
		&probe{id: "test.b", rec: rec, fail: "close"},
		&probe{id: "test.c", rec: rec, fail: "close"},
	}
	err := Close(ps)
	if want := []string{"test.c.close", "test.b.close", "test.a.close"}; !slices.Equal(rec.calls, want) {
		t.Errorf("calls = %v; want %v", rec.calls, want)
	}
	if err == nil || strings.Count(err.Error(), "close refused") != 2 {
		t.Errorf("Close = %v; want both close errors", err)
	}
	if err := Close(nil); err != nil {
		t.Errorf("Close(nil) = %v", err)
	}
}
