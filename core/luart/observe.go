package luart

import "time"

// HookObserver receives the duration of every hook call, by hook name
// ("classify", "route", ...), whatever its outcome. It is called on the
// caller's goroutine and must return quickly.
type HookObserver func(hook string, d time.Duration)

// SetHookObserver makes f receive the duration of every later hook call;
// nil stops it. Metrics subscribe here after the engine is built.
func (e *Engine) SetHookObserver(f HookObserver) {
	if f == nil {
		e.hookObserver.Store(nil)
		return
	}
	e.hookObserver.Store(&f)
}

// observeDuration hands the duration of a call of hook h, started at
// start, to the observer, if there is one.
func (e *Engine) observeDuration(h hookID, start time.Time) {
	if f := e.hookObserver.Load(); f != nil {
		(*f)(hookNames[h], time.Since(start))
	}
}
