package agent

import (
	"reflect"
	"testing"
)

func TestParsesAJobLineWithWholeNumbersWrittenAsJavaScriptMayWriteThem(t *testing.T) {
	job, err := ParseJob([]byte(` {"version":1.0,"command":"/bin/app","args":["a",""],"env":{"K":"v","E":""},"graceMs":1e3} `))
	if err != nil {
		t.Fatal(err)
	}
	want := Job{Version: 1, Command: "/bin/app", Args: []string{"a", ""}, Env: map[string]string{"K": "v", "E": ""}, GraceMs: 1000}
	if !reflect.DeepEqual(job, want) {
		t.Fatalf("job %+v, want %+v", job, want)
	}
}

func TestTakesAnOptionalArgv0AndRefusesOneThatIsNotAString(t *testing.T) {
	job, err := ParseJob([]byte(`{"version":1,"command":"/bin/app","args":[],"env":{},"graceMs":0,"argv0":"placed:/bin/app"}`))
	if err != nil || job.Argv0 != "placed:/bin/app" {
		t.Fatalf("job %+v, err %v", job, err)
	}
	if _, err := ParseJob([]byte(`{"version":1,"command":"/bin/app","args":[],"env":{},"graceMs":0,"argv0":3}`)); err == nil {
		t.Fatal("argv0 3 was accepted")
	}
}
