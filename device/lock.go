//go:build linux

package device

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// busy returns the ErrBusy error for path, naming the holder where it can
// be found.
func busy(path string) error {
	holder := "another process (which one, only root can see)"
	if h := lockHolder("/", path); h != "" {
		holder = h
	} else if hs, _ := Holders("/", path); len(hs) > 0 {
		holder = strings.Join(hs, ", ")
	}
	return &Error{Op: "open", Path: path, Class: ErrBusy, Holder: holder}
}

// lockHolder finds the process holding a flock on the device at path in
// root/proc/locks, which every user may read, and returns "PID N (name)", or
// "" if no lock is found.
func lockHolder(root, path string) string {
	fi, err := os.Stat(filepath.Join(root, path))
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	// The kernel writes the filesystem's device as hex major:minor and the
	// inode in decimal: "1: FLOCK  ADVISORY  WRITE 1234 00:19:4 0 EOF".
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	f, err := os.Open(filepath.Join(root, "proc/locks"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		pid := fields[4]
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(root, "proc", pid, "comm"))
		if name := strings.TrimSpace(string(comm)); name != "" {
			return fmt.Sprintf("PID %s (%s)", pid, name)
		}
		return "PID " + pid
	}
	return ""
}
