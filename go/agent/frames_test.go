package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
)

// decode splits a frame stream into frames, failing the test on a bad one.
func decode(t *testing.T, data []byte) []frame {
	t.Helper()
	var frames []frame
	for len(data) > 0 {
		if len(data) < frameHeader {
			t.Fatalf("%d bytes left, a frame header is %d", len(data), frameHeader)
		}
		n := int(binary.BigEndian.Uint32(data[1:frameHeader]))
		if n > MaxFrame || len(data) < frameHeader+n {
			t.Fatalf("bad frame: kind %d, length %d, %d bytes left", data[0], n, len(data))
		}
		frames = append(frames, frame{FrameKind(data[0]), data[frameHeader : frameHeader+n]})
		data = data[frameHeader+n:]
	}
	return frames
}

func TestSplitsAPayloadOverOneMebibyteIntoFramesOfAtMostOneMebibyte(t *testing.T) {
	var buf bytes.Buffer
	payload := bytes.Repeat([]byte("x"), 2*MaxFrame+3)
	if err := NewFrameWriter(&buf, nil).Send(FrameStdout, payload); err != nil {
		t.Fatal(err)
	}
	frames := decode(t, buf.Bytes())
	if len(frames) != 3 || len(frames[0].payload) != MaxFrame || len(frames[1].payload) != MaxFrame || len(frames[2].payload) != 3 {
		t.Fatalf("frames: %d", len(frames))
	}
}

func TestSendsAnEmptyPayloadAsOneEmptyFrame(t *testing.T) {
	var buf bytes.Buffer
	if err := NewFrameWriter(&buf, nil).Send(FrameTarEnd, nil); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes(); !bytes.Equal(got, []byte{5, 0, 0, 0, 0}) {
		t.Fatalf("tarEnd frame %v", got)
	}
}

func TestNeverInterleavesFramesFromManyGoroutines(t *testing.T) {
	var buf bytes.Buffer
	out := NewFrameWriter(&buf, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g byte) {
			defer wg.Done()
			payload := bytes.Repeat([]byte{g}, 1000+int(g)*7919)
			for i := 0; i < 200; i++ {
				_ = out.Send(FrameStdout, payload)
			}
		}(byte(g))
	}
	wg.Wait()
	frames := decode(t, buf.Bytes())
	if len(frames) != 8*200 {
		t.Fatalf("%d frames, want %d", len(frames), 8*200)
	}
	for _, f := range frames {
		g := f.payload[0]
		if len(f.payload) != 1000+int(g)*7919 || bytes.Count(f.payload, []byte{g}) != len(f.payload) {
			t.Fatalf("a frame mixes the payloads of several writers")
		}
	}
}

func TestFailsEveryWriteAfterTheFirstFailedOneAndReportsItOnce(t *testing.T) {
	calls := 0
	out := NewFrameWriter(failing{}, func(error) { calls++ })
	for i := 0; i < 3; i++ {
		if err := out.Send(FrameStdout, []byte("x")); !errors.Is(err, errLost) {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if calls != 1 {
		t.Fatalf("onFail called %d times, want 1", calls)
	}
}

func TestSendsTarFramesOfAQuarterMebibyteAndStopsOnceLost(t *testing.T) {
	var buf bytes.Buffer
	lost := false
	frames := &tarFrames{out: NewFrameWriter(&buf, nil), stop: func() bool { return lost }}
	if _, err := io.Copy(frames, bytes.NewReader(make([]byte, 2*tarChunk+10))); err != nil {
		t.Fatal(err)
	}
	if err := frames.Flush(); err != nil {
		t.Fatal(err)
	}
	got := decode(t, buf.Bytes())
	if len(got) != 3 || len(got[0].payload) != tarChunk || len(got[2].payload) != 10 || got[0].kind != FrameTar {
		t.Fatalf("tar frames: %d", len(got))
	}
	lost = true
	if _, err := frames.Write(make([]byte, tarChunk)); !errors.Is(err, errLost) {
		t.Fatalf("write once lost: %v", err)
	}
}

func TestWritesServeFramesWithTheInstanceIdBetweenKindAndLengthAndKeepsItWhenSplitting(t *testing.T) {
	var buf bytes.Buffer
	out := NewMuxWriter(&buf, nil)
	if err := (stream{out: out, id: 0x01020304}).Send(FrameStderr, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := out.Send(FrameTarEnd, nil); err != nil {
		t.Fatal(err)
	}
	want := []byte{2, 1, 2, 3, 4, 0, 0, 0, 2, 'h', 'i', 5, 0, 0, 0, 0, 0, 0, 0, 0}
	if got := buf.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("frames % x, want % x", got, want)
	}
	buf.Reset()
	if err := (stream{out: out, id: 7}).Send(FrameStdout, make([]byte, MaxFrame+1)); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	second := data[muxHeader+MaxFrame:]
	if binary.BigEndian.Uint32(data[1:5]) != 7 || binary.BigEndian.Uint32(data[5:9]) != MaxFrame ||
		!bytes.Equal(second, []byte{1, 0, 0, 0, 7, 0, 0, 0, 1, 0}) {
		t.Fatalf("split frames: first header % x, second frame % x", data[:muxHeader], second)
	}
}
