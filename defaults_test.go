package corriere

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestDefaultsAreTheRepositoryFiles checks every embedded file is the
// repository's file byte for byte, and that the repository has no policy
// file the binary would leave out (embed skips names starting with . or _).
func TestDefaultsAreTheRepositoryFiles(t *testing.T) {
	for dir, f := range map[string]fs.FS{"scripts": Scripts(), "rules": Rules(), "testdata/sim": SimWorld()} {
		embedded := map[string]bool{}
		err := fs.WalkDir(f, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			embedded[path] = true
			got, err := fs.ReadFile(f, path)
			if err != nil {
				return err
			}
			want, err := os.ReadFile(filepath.Join(dir, path))
			if err != nil {
				return err
			}
			if string(got) != string(want) {
				t.Errorf("%s/%s differs from the repository's file", dir, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			if !embedded[filepath.ToSlash(rel)] {
				t.Errorf("%s is in the repository but not in the binary", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fs.Stat(SimWorld(), "world.json"); err != nil {
		t.Errorf("no world.json in the embedded world: %v", err)
	}
	if _, err := fs.Stat(Scripts(), "classify.lua"); err != nil {
		t.Errorf("no classify.lua in the embedded scripts: %v", err)
	}
}
