package agent

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// FrameKind says what a frame's payload is.
type FrameKind byte

// The frame kinds of the agent's stdout.
const (
	FrameStdout FrameKind = 1
	FrameStderr FrameKind = 2
	FrameEvent  FrameKind = 3
	FrameTar    FrameKind = 4
	FrameTarEnd FrameKind = 5
)

// MaxFrame is the largest payload of one frame; bigger writes are split.
const MaxFrame = 1 << 20

const frameHeader = 5

// errLost is returned by writes after the controller went away.
var errLost = errors.New("the connection to the controller is lost")

// FrameWriter writes whole frames ([kind u8][length u32 BE][payload]) from any
// goroutine; the first failed write makes it fail every later one.
type FrameWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	err    error
	onFail func(error)
}

// NewFrameWriter writes frames to w and calls onFail once, on the first failed write.
func NewFrameWriter(w io.Writer, onFail func(error)) *FrameWriter {
	return &FrameWriter{w: w, onFail: onFail}
}

// Send writes payload as one or more frames of kind; an empty payload is one empty frame.
func (f *FrameWriter) Send(kind FrameKind, payload []byte) error {
	for {
		n := len(payload)
		if n > MaxFrame {
			n = MaxFrame
		}
		if err := f.frame(kind, payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if len(payload) == 0 {
			return nil
		}
	}
}

// One frame in one write, so frames from different goroutines never interleave.
func (f *FrameWriter) frame(kind FrameKind, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.buf = append(f.buf[:0], byte(kind), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(f.buf[1:frameHeader], uint32(len(payload)))
	f.buf = append(f.buf, payload...)
	if _, err := f.w.Write(f.buf); err != nil {
		f.err = err
		if f.onFail != nil {
			f.onFail(err)
		}
		return err
	}
	if cap(f.buf) > 2*tarChunk {
		f.buf = nil // keep no megabyte buffer around after one large frame
	}
	return nil
}

// event sends one event frame.
func (f *FrameWriter) event(event any) error { return f.Send(FrameEvent, encodeEvent(event)) }

// tarChunk is the size of the tar frames: small enough that the controller's
// reader, which joins the SSH packets of a frame, does little copying.
const tarChunk = 256 << 10

// tarFrames buffers a tar stream into tar frames of tarChunk bytes; it fails once stop says so.
type tarFrames struct {
	out  *FrameWriter
	buf  []byte
	stop func() bool
}

// Write buffers p, sending every full chunk.
func (t *tarFrames) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if t.buf == nil {
			t.buf = make([]byte, 0, tarChunk)
		}
		n := copy(t.buf[len(t.buf):cap(t.buf)], p)
		t.buf = t.buf[:len(t.buf)+n]
		p = p[n:]
		written += n
		if len(t.buf) == cap(t.buf) {
			if err := t.Flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// Flush sends what is buffered as one frame.
func (t *tarFrames) Flush() error {
	if t.stop != nil && t.stop() {
		return errLost
	}
	if len(t.buf) == 0 {
		return nil
	}
	err := t.out.Send(FrameTar, t.buf)
	t.buf = t.buf[:0]
	return err
}
