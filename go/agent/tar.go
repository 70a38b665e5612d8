package agent

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// Pack writes dir's tree to w as a tar stream of relative entries (`a.txt`, `sub/`,
// `sub/b.txt`), depth first and sorted per directory. Links are packed as links and
// never followed, special files are left out, a path that vanishes meanwhile is
// skipped, and any other failure is an *Error naming the path. Errors of w come back as they are.
func Pack(w io.Writer, dir string) error {
	p := &packer{tw: tar.NewWriter(w), buf: make([]byte, tarChunk)}
	names, err := listDir(dir, 0)
	if err != nil {
		return pathError(dir, "list", err)
	}
	if err := p.tree(dir, "", names); err != nil {
		return err
	}
	return p.tw.Close()
}

// packer holds one Pack's tar writer and read buffer.
type packer struct {
	tw  *tar.Writer
	buf []byte
}

// Add the entries `names` of directory `abs`, named `rel` + name in the archive, and everything below them.
func (p *packer) tree(abs, rel string, names []string) error {
	for _, name := range names {
		if err := p.entry(filepath.Join(abs, name), rel+name); err != nil {
			return err
		}
	}
	return nil
}

// Add one path, without following it.
func (p *packer) entry(abs, rel string) error {
	fi, err := os.Lstat(abs)
	if vanished(err) {
		return nil
	}
	if err != nil {
		return pathError(abs, "stat", err)
	}
	switch {
	case fi.IsDir():
		if err := p.tw.WriteHeader(header(fi, rel+"/", tar.TypeDir)); err != nil {
			return err
		}
		names, err := listDir(abs, syscall.O_NOFOLLOW)
		if vanished(err) {
			return nil
		}
		if err != nil {
			return pathError(abs, "list", err)
		}
		return p.tree(abs, rel+"/", names)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if vanished(err) {
			return nil
		}
		if err != nil {
			return pathError(abs, "read the link", err)
		}
		h := header(fi, rel, tar.TypeSymlink)
		h.Linkname = target
		return p.tw.WriteHeader(h)
	case fi.Mode().IsRegular():
		return p.file(abs, rel)
	}
	return nil // fifos, sockets and devices are left out
}

// Add a regular file with exactly the size it had when it was opened.
func (p *packer) file(abs, rel string) error {
	// O_NONBLOCK: a file swapped for a fifo after the lstat does not block the open.
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if vanished(err) {
		return nil
	}
	if err != nil {
		return pathError(abs, "open", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return pathError(abs, "stat", err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	h := header(fi, rel, tar.TypeReg)
	h.Size = fi.Size()
	if err := p.tw.WriteHeader(h); err != nil {
		return err
	}
	for done := int64(0); done < h.Size; {
		chunk := p.buf
		if left := h.Size - done; left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		n, err := f.Read(chunk)
		if n == 0 && errors.Is(err, io.EOF) {
			return &Error{Code: CodeOutputs, Message: fmt.Sprintf("outputs: %s shrank from %d to %d bytes while being packed", abs, h.Size, done)}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return pathError(abs, "read", err)
		}
		if _, err := p.tw.Write(chunk[:n]); err != nil {
			return err
		}
		done += int64(n)
	}
	return nil
}

// specialBits maps Go's setuid, setgid and sticky mode bits to the Unix ones.
var specialBits = []struct {
	goBit fs.FileMode
	unix  int64
}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}}

// A tar header for fi under name: permission bits (with setuid, setgid and sticky) and mtime, owner 0.
func header(fi fs.FileInfo, name string, typ byte) *tar.Header {
	mode := int64(fi.Mode().Perm())
	for _, bit := range specialBits {
		if fi.Mode()&bit.goBit != 0 {
			mode |= bit.unix
		}
	}
	return &tar.Header{Typeflag: typ, Name: name, Mode: mode, ModTime: fi.ModTime()}
}

// The sorted names in directory abs, opened with the extra flags.
func listDir(abs string, flags int) ([]string, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_DIRECTORY|flags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// True for the error of a path that no longer exists.
func vanished(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// The error of a path that cannot be packed.
func pathError(abs, what string, err error) *Error {
	return &Error{Code: CodeOutputs, Message: fmt.Sprintf("outputs: cannot %s %s: %s", what, abs, reason(err)), Err: err}
}

// An error's text without the operation and path that os adds.
func reason(err error) string {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return sysErr.Err.Error()
	}
	return err.Error()
}
