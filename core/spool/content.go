package spool

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"corriere/core/message"
)

// contentDir is the subdirectory of content files; Pebble ignores it.
const contentDir = "content"

func (s *Spool) contentPath(id string) string { return filepath.Join(s.dir, contentDir, id) }

// writeContentFile writes m's content to its file and syncs the file and
// the directory, so that it is durable before the batch naming it commits.
// It writes straight from the message: the content is never copied whole.
func (s *Spool) writeContentFile(m *message.Message) (err error) {
	path := s.contentPath(m.ID)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("spool: content file %s: %w", m.ID, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("spool: content file %s: %w", m.ID, err)
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	if _, err := m.WriteTo(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeContentFile deletes the content file of a finished message, if it
// has one. A failure only leaves a file that the next Scan removes.
func (s *Spool) removeContentFile(id string) {
	if err := os.Remove(s.contentPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("spool: cannot remove a finished message's content file; the next start will", "msg_id", id, "err", err)
	}
}

// removeStrayFiles deletes content files of messages the database does not
// hold (a crash between a commit and the file's removal, or during a Put);
// known reports whether the database holds message id.
func (s *Spool) removeStrayFiles(known func(id string) bool) error {
	names, err := os.ReadDir(filepath.Join(s.dir, contentDir))
	if err != nil {
		return fmt.Errorf("spool: scan content files: %w", err)
	}
	for _, n := range names {
		id := strings.TrimSuffix(n.Name(), ".tmp")
		if id == n.Name() && known(id) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, contentDir, n.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: remove stray content file: %w", err)
		}
	}
	return nil
}
