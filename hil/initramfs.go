package hil

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Modules returns the .ko files to load, in order, for the named modules
// of d's kernel, as modprobe --show-depends resolves them against the
// unpacked tree's modules.dep. Built-in modules need nothing and are left
// out.
func Modules(ctx context.Context, d *Dist, names ...string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	for _, n := range names {
		// One module per call: modprobe takes further words as parameters.
		out, err := exec.CommandContext(ctx, "modprobe", "-d", d.KernelRoot(), "-S", d.KernelRelease, "--show-depends", n).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("hil: modprobe --show-depends %s for %s: %v: %s", n, d.KernelRelease, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "insmod" || seen[f[1]] {
				continue
			}
			seen[f[1]] = true
			order = append(order, f[1])
		}
	}
	return order, nil
}

// Initramfs is a newc (cpio) archive being put together in memory order.
// Parent directories are made as needed.
type Initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode uint32 // with the file type bits
	data []byte // file content or symlink target
	src  string // file content read from here at write time
}

const (
	typeDir  = 0o040000
	typeFile = 0o100000
	typeLink = 0o120000
)

// NewInitramfs returns an empty archive with the directories a busybox
// guest expects.
func NewInitramfs() *Initramfs {
	r := &Initramfs{entries: map[string]entry{}}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp", "etc", "root", "var"} {
		r.Dir(d)
	}
	return r
}

// Dir adds a directory (and its parents).
func (r *Initramfs) Dir(name string) {
	name = clean(name)
	for p := name; p != "." && p != "/"; p = path.Dir(p) {
		if _, ok := r.entries[p]; !ok {
			r.entries[p] = entry{mode: typeDir | 0o755}
		}
	}
}

// Bytes adds a file with the given content and permission bits.
func (r *Initramfs) Bytes(name string, data []byte, perm uint32) {
	name = clean(name)
	r.Dir(path.Dir(name))
	r.entries[name] = entry{mode: typeFile | perm, data: data}
}

// File adds the host file src as name, following symlinks.
func (r *Initramfs) File(name, src string, perm uint32) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("hil: initramfs: %w", err)
	}
	if perm == 0 {
		perm = uint32(fi.Mode().Perm())
	}
	name = clean(name)
	r.Dir(path.Dir(name))
	r.entries[name] = entry{mode: typeFile | perm, src: src}
	return nil
}

// Symlink adds name pointing at target.
func (r *Initramfs) Symlink(name, target string) {
	name = clean(name)
	r.Dir(path.Dir(name))
	r.entries[name] = entry{mode: typeLink | 0o777, data: []byte(target)}
}

// Tree adds every regular file and symlink under the host directory src
// at dst.
func (r *Initramfs) Tree(dst, src string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case fi.IsDir():
			r.Dir(name)
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			r.Symlink(name, t)
		case fi.Mode().IsRegular():
			return r.File(name, p, 0)
		}
		return nil
	})
}

// Libraries adds the shared libraries a host executable needs (as ldd
// lists them, the loader included) at the paths ldd names.
func (r *Initramfs) Libraries(ctx context.Context, exe string) error {
	out, err := exec.CommandContext(ctx, "ldd", exe).CombinedOutput()
	if err != nil {
		return fmt.Errorf("hil: ldd %s: %v: %s", exe, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		case strings.Contains(l, "not found"):
			return fmt.Errorf("hil: %s needs a library the host lacks: %s", exe, strings.TrimSpace(l))
		default:
			continue
		}
		if err := r.File(lib, lib, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// ELFLibraries adds the shared libraries an executable of another
// architecture needs (its DT_NEEDED entries, followed recursively, and its
// program interpreter), found in the unpacked package roots: ldd cannot
// run a foreign binary.
func (r *Initramfs) ELFLibraries(exe string, roots []string) error {
	f, err := elf.Open(exe)
	if err != nil {
		return fmt.Errorf("hil: %s: %w", exe, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return err
			}
			interp := strings.TrimRight(string(b), "\x00")
			src, err := findLib(path.Base(interp), roots)
			if err != nil {
				return fmt.Errorf("hil: %s's interpreter: %w", exe, err)
			}
			if err := r.File(interp, src, 0o755); err != nil {
				return err
			}
		}
	}
	seen := map[string]bool{}
	var walk func(string) error
	walk = func(file string) error {
		f, err := elf.Open(file)
		if err != nil {
			return fmt.Errorf("hil: %s: %w", file, err)
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return fmt.Errorf("hil: %s: %w", file, err)
		}
		for _, n := range needed {
			if seen[n] {
				continue
			}
			seen[n] = true
			src, err := findLib(n, roots)
			if err != nil {
				return fmt.Errorf("hil: %s needs %s: %w", exe, n, err)
			}
			if err := r.File(path.Join("lib", filepath.Base(filepath.Dir(src)), n), src, 0o755); err != nil {
				return err
			}
			if err := walk(src); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(exe)
}

// findLib looks for a library by file name in the multiarch library
// directories of the unpacked packages.
func findLib(name string, roots []string) (string, error) {
	for _, root := range roots {
		for _, dir := range []string{"lib", "usr/lib"} {
			matches, _ := filepath.Glob(filepath.Join(root, dir, "*-linux-gnu", name))
			if len(matches) > 0 {
				return matches[0], nil
			}
			if p := filepath.Join(root, dir, name); fileExists(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s is in none of the fetched packages (add its package to the guest's list)", name)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// WriteTo writes the archive in newc format.
func (r *Initramfs) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &countWriter{w: bw}
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names) // parents before children
	ino := uint32(1)
	for _, n := range names {
		e := r.entries[n]
		data := e.data
		if e.src != "" {
			b, err := os.ReadFile(e.src)
			if err != nil {
				return cw.n, fmt.Errorf("hil: initramfs %s: %w", n, err)
			}
			data = b
		}
		writeHeader(cw, ino, e.mode, 1, n, data)
		ino++
	}
	writeHeader(cw, 0, 0, 1, "TRAILER!!!", nil)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, cw.err
}

// WriteFile writes the archive to a file.
func (r *Initramfs) WriteFile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := r.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeHeader(w *countWriter, ino, mode, nlink uint32, name string, data []byte) {
	var h bytes.Buffer
	fmt.Fprintf(&h, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	h.WriteString(name)
	h.WriteByte(0)
	for (h.Len())%4 != 0 {
		h.WriteByte(0)
	}
	w.Write(h.Bytes())
	w.Write(data)
	if pad := (4 - len(data)%4) % 4; pad > 0 {
		w.Write(make([]byte, pad))
	}
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
