package luart

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchDebounce is how long Watch waits after the last change before it
// reloads: editors save in several steps (write a temporary file, rename
// it over the original, fix permissions), and a checkout changes many
// files at once.
const WatchDebounce = 200 * time.Millisecond

// Watch reloads the policy whenever a .lua file changes under the scripts
// or rules directory, debounced by WatchDebounce, until ctx ends. It
// watches every subdirectory, including ones created later, and sees
// in-place writes as well as saves that rename a new file over the old
// one. A reload that fails leaves the current generation in place (see
// Reload); watching goes on.
//
// Watch returns once the watches are in place, so that every change made
// after it returns is seen; the watching goes on in the background, and
// done is closed when it has stopped. It returns an error only when
// watching cannot start.
func (e *Engine) Watch(ctx context.Context) (done <-chan struct{}, err error) {
	w, dirs, err := e.startWatch()
	if err != nil {
		return nil, err
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		e.watchLoop(ctx, w, dirs)
	}()
	return stopped, nil
}

// startWatch watches both directory trees; changes from then on are seen.
func (e *Engine) startWatch() (*fsnotify.Watcher, map[string]bool, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, fmt.Errorf("luart: watch: %w", err)
	}
	dirs := map[string]bool{}
	for _, root := range []string{e.opts.ScriptsDir, e.opts.RulesDir} {
		if err := addTree(w, root, dirs); err != nil {
			w.Close()
			return nil, nil, err
		}
	}
	return w, dirs, nil
}

// watchLoop reloads on relevant events until ctx ends, then closes w.
func (e *Engine) watchLoop(ctx context.Context, w *fsnotify.Watcher, dirs map[string]bool) {
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					if err := addTree(w, ev.Name, dirs); err != nil {
						e.log.Error("luart: watch new directory", "dir", ev.Name, "error", err.Error())
					}
					timer.Reset(WatchDebounce)
					continue
				}
			}
			if relevant(ev, dirs) {
				timer.Reset(WatchDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			e.log.Error("luart: watch", "error", err.Error())
		case <-timer.C:
			// A refused reload is logged, counted and kept by Reload.
			_ = e.Reload()
		}
	}
}

// addTree watches dir and every directory below it.
func addTree(w *fsnotify.Watcher, dir string, dirs map[string]bool) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("luart: watch %s: %w", path, err)
		}
		if !d.IsDir() || dirs[path] {
			return nil
		}
		if err := w.Add(path); err != nil {
			return fmt.Errorf("luart: watch %s: %w", path, err)
		}
		dirs[path] = true
		return nil
	})
}

// relevant reports whether ev may change the policy: a change to a .lua
// file (not an editor's lock or backup file), or a watched directory going
// away. Permission changes alone are not.
func relevant(ev fsnotify.Event, dirs map[string]bool) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if dirs[ev.Name] {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			delete(dirs, ev.Name)
		}
		return true
	}
	base := filepath.Base(ev.Name)
	return strings.HasSuffix(base, ".lua") && !strings.HasPrefix(base, ".") && !strings.HasPrefix(base, "#")
}
