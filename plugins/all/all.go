// Package all imports every plugin shipped with Corriere, so that a binary
// that imports it has them registered. The core never imports plugins.
package all

import (
	_ "corriere/plugins/dkim"
	_ "corriere/plugins/tracking"
	_ "corriere/plugins/webhook"
)
