package agent

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadsTermAndDoneAndNothingElseAsControlLines(t *testing.T) {
	cases := map[string]Control{
		`{"op":"term"}`:         ControlTerm,
		`{"op":"done"}`:         ControlDone,
		`{"op":"done","x":1}`:   ControlDone,
		`{"op":"stop"}`:         "",
		`{"op":null}`:           "",
		`{"op":1}`:              "",
		`[{"op":"term"}]`:       "",
		`null`:                  "",
		`not json`:              "",
		`{"op":"term"} garbage`: "",
		``:                      "",
	}
	for line, want := range cases {
		got, ok := parseControl([]byte(line))
		if got != want || ok != (want != "") {
			t.Errorf("control line %q: %q %v, want %q", line, got, ok, want)
		}
	}
}

func TestReadsLinesUpToALastOneWithoutNewlineAndSkipsOverlongOnes(t *testing.T) {
	long := strings.Repeat("x", maxLine+1)
	lines := newLineReader(strings.NewReader("first\r\n\n" + long + "\nafter\nlast"))
	var got []string
	for {
		line, err := lines.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errLineTooLong) {
			got = append(got, "(too long)")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(line))
	}
	if want := []string{"first", "", "(too long)", "after", "last"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

func TestTakesALineOfExactlyTheLimit(t *testing.T) {
	line := bytes.Repeat([]byte("y"), maxLine)
	got, err := newLineReader(bytes.NewReader(append(line, '\n'))).next()
	if err != nil || len(got) != maxLine {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
}
