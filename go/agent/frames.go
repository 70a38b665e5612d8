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

// The header sizes: run mode's [kind][length], serve mode's [kind][id][length].
const (
	frameHeader = 5
	muxHeader   = 9
)

// errLost is returned by writes after the controller went away.
var errLost = errors.New("the connection to the controller is lost")

// sender sends the frames of one stream: run mode's whole stdout, or one instance's id in serve mode.
type sender interface {
	Send(kind FrameKind, payload []byte) error
}

// FrameWriter writes whole frames from any goroutine, run mode's
// ([kind u8][length u32 BE][payload]) or serve mode's ([kind u8][id u32 BE][length u32 BE][payload]);
// the first failed write makes it fail every later one.
type FrameWriter struct {
	mu     sync.Mutex
	w      io.Writer
	ids    bool
	buf    []byte
	err    error
	onFail func(error)
}

// NewFrameWriter writes run mode's frames to w and calls onFail once, on the first failed write.
func NewFrameWriter(w io.Writer, onFail func(error)) *FrameWriter {
	return &FrameWriter{w: w, onFail: onFail}
}

// NewMuxWriter writes serve mode's frames, which carry an instance id, to w; onFail as for NewFrameWriter.
func NewMuxWriter(w io.Writer, onFail func(error)) *FrameWriter {
	return &FrameWriter{w: w, ids: true, onFail: onFail}
}

// Send writes payload as one or more frames of kind (id 0 in serve mode); an empty payload is one empty frame.
func (f *FrameWriter) Send(kind FrameKind, payload []byte) error { return f.send(0, kind, payload) }

// stream is the frames of one instance id of a serve mode writer.
type stream struct {
	out *FrameWriter
	id  uint32
}

// Send writes payload as frames of kind for the stream's id.
func (s stream) Send(kind FrameKind, payload []byte) error { return s.out.send(s.id, kind, payload) }

// event sends one event frame for the stream's id.
func (s stream) event(event any) error { return s.Send(FrameEvent, encodeEvent(event)) }

func (f *FrameWriter) send(id uint32, kind FrameKind, payload []byte) error {
	for {
		n := len(payload)
		if n > MaxFrame {
			n = MaxFrame
		}
		if err := f.frame(id, kind, payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if len(payload) == 0 {
			return nil
		}
	}
}

// One frame in one write, so frames from different goroutines never interleave.
func (f *FrameWriter) frame(id uint32, kind FrameKind, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.ids {
		f.buf = append(f.buf[:0], byte(kind), 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(f.buf[1:5], id)
		binary.BigEndian.PutUint32(f.buf[5:muxHeader], uint32(len(payload)))
	} else {
		f.buf = append(f.buf[:0], byte(kind), 0, 0, 0, 0)
		binary.BigEndian.PutUint32(f.buf[1:frameHeader], uint32(len(payload)))
	}
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
	out  sender
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
