package demo

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"corriere/core/admin"
	"corriere/core/testlib"
)

// browser returns the path of a Chromium to drive, or "" when there is
// none. CORRIERE_CHROMIUM names one explicitly.
func browser() string {
	if p := os.Getenv("CORRIERE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestStatusPageInABrowser runs the demo with its admin listener and
// drives headless Chromium to the status page while the traffic flows. It
// checks the page shows the lanes with their rates and limits, and that it
// updates by itself: a suspension an operator sets after the page loaded
// appears, with its reason, without reloading. It saves a screenshot
// (status-page.png in the test's temporary directory, or in
// CORRIERE_SCREENSHOT_DIR when set, to keep it).
func TestStatusPageInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo and a browser")
	}
	chromium := browser()
	if chromium == "" {
		t.Skip("no Chromium found (apt-get install chromium, or set CORRIERE_CHROMIUM): the status page is not tested in a browser")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()

	opts := repoOptions(t)
	opts.Messages, opts.Duration, opts.Admin = 600, 60*time.Second, adminAddr
	// Late mail an hour away keeps the demo running, its admin listener
	// and page with it, until the test is done and cancels it: a settled
	// demo would end and close the page under a browser slow to start.
	opts.WorldPath = promptWorld(t, opts.WorldPath, "1h")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, opts)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	testlib.WaitForWithin(t, 30*time.Second, "the status page to answer", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 2000))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+adminAddr+"/"), chromedp.WaitVisible(chromedp.CSS("#lanes"))); err != nil {
		t.Fatalf("loading the status page: %v", err)
	}
	// The page swaps its live part in every two seconds: read an
	// element's text in one step of the page's own script, so that a swap
	// cannot come between finding the element and reading it.
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(function(){var e=document.querySelector(`+strconv.Quote(sel)+`);return e?e.innerText:""})()`))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	first := text("#generated")
	// The lanes appear once the first messages are routed.
	var lanes string
	testlib.WaitForWithin(t, 45*time.Second, "lanes with traffic and reputation rows on the page", func() bool {
		lanes = text("#lanes")
		return strings.Contains(lanes, "gmail") && strings.Contains(lanes, "/min") && strings.Contains(text("#rep-provider"), "%")
	})
	for _, want := range []string{"Depth", "Sent 1h", "Rate", "Limits", "conn", "127.0.0."} {
		if !strings.Contains(lanes, want) {
			t.Errorf("lanes lack %q:\n%s", want, lanes)
		}
	}

	// An operator suspends a provider: the open page shows it, with the
	// reason, at its next refresh.
	spoolDir := filepath.Join(opts.KeepDir, "spool")
	c, err := admin.Discover(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	const reason = "postmaster asked us to slow down"
	var res map[string]any
	if err := c.Post(context.Background(), "/api/suspend?provider=libero&for=10m&reason="+strings.ReplaceAll(reason, " ", "+"), &res); err != nil {
		t.Fatalf("suspend: %v", err)
	}
	testlib.WaitForWithin(t, 30*time.Second, "the suspension on the page without a reload", func() bool {
		return strings.Contains(text("#suspensions"), reason)
	})
	if got := text("#generated"); got == first {
		t.Errorf("the page's time did not move from %s", first)
	}
	if s := text("#suspensions"); !strings.Contains(s, "libero") {
		t.Errorf("suspensions lack libero:\n%s", s)
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("CORRIERE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "status-page.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page: %s (%d bytes)", path, len(png))
}
