package api

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestListenRefusesNonSocket: whatever is at the socket path and is not a
// socket (the config file, a link to one) is refused and left alone.
func TestListenRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "xdplb.yaml")
	if err := os.WriteFile(config, []byte("services: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(config, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{config, link, dir} {
		_, err := Listen(path)
		want := "api.socket " + path + ": exists and is not a socket; refusing to remove it"
		if err == nil || err.Error() != want {
			t.Errorf("Listen(%s): %v, want %q", path, err, want)
		}
	}
	if b, err := os.ReadFile(config); err != nil || string(b) != "services: []\n" {
		t.Errorf("config file now %q, %v", b, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link now %v, %v", fi, err)
	}
}

// TestListenRefusesLiveSocket: a second daemon stops before it touches
// anything, and the first keeps its socket.
func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xdplb.sock")
	first, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = Listen(path)
	if err == nil || !strings.Contains(err.Error(), "another daemon is listening on api.socket "+path) {
		t.Fatalf("second Listen: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("first daemon's socket after the refusal: %v", err)
	}
	c.Close()
}

// TestListenReplacesStaleSocket: the socket of a daemon that died is
// taken over.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xdplb.sock")
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestListenRefusesLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "made")
	path := filepath.Join(dir, strings.Repeat("s", 120))
	_, err := Listen(path)
	want := "api.socket: path is " + strconv.Itoa(len(path)) + " bytes, longer than the 107 a unix socket allows"
	if err == nil || err.Error() != want {
		t.Errorf("Listen: %v, want %q", err, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("made %s: %v", dir, err)
	}
}

// TestListenRemovesWhatItMade: the directories made for the socket go
// when the listener is closed, or at once when Listen fails after making
// them; a directory someone else put a file in stays.
func TestListenRemovesWhatItMade(t *testing.T) {
	base := t.TempDir()
	ln, err := Listen(filepath.Join(base, "run", "xdplb", "xdplb.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(base); len(es) != 0 {
		t.Errorf("left %v after Close", es)
	}

	ln, err = Listen(filepath.Join(base, "run", "xdplb", "xdplb.sock"))
	if err != nil {
		t.Fatal(err)
	}
	owned := filepath.Join(base, "run", "xdplb", "xdplb.owned.json")
	if err := os.WriteFile(owned, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := os.Stat(owned); err != nil {
		t.Errorf("a file beside the socket: %v", err)
	}

	// Binding "made/.." fails (it exists once "made" does), after "made"
	// was made.
	if _, err := Listen(filepath.Join(base, "made", "..")); err == nil {
		t.Fatal("bound a socket on a directory")
	}
	if _, err := os.Stat(filepath.Join(base, "made")); !os.IsNotExist(err) {
		t.Errorf("failed Listen left its directory: %v", err)
	}
}

// TestListenCloseKeepsReplacedSocket: a socket another daemon bound at the
// path since is not removed.
func TestListenCloseKeepsReplacedSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xdplb.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the other daemon's socket: %v", err)
	}
}

// TestListenRefusesASharedDirectory: a socket directory others may write
// is refused: the ownership record kept beside the socket would be theirs
// to plant.
func TestListenRefusesASharedDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(filepath.Join(dir, "xdplb.sock"))
	if err == nil || !strings.Contains(err.Error(), "is writable by others") {
		t.Errorf("Listen in a 1777 directory: %v, want a refusal", err)
	}
}
