package main

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// Clock ticks per second of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const userHz = 100

// Sample is what /proc and getrusage tell at one moment.
type sample struct {
	serverCPUMs float64
	serverRSS   int64
	serverHWM   int64
	loadCPUMs   float64
}

func takeSample(pid int) sample {
	s := sample{loadCPUMs: ownCPUMs()}
	if pid > 0 {
		s.serverCPUMs = cpuOf(pid)
		s.serverRSS, s.serverHWM = memoryOf(pid)
	}
	return s
}

// User + system CPU time of process `pid` in ms, or -1 when it cannot be read.
func cpuOf(pid int) float64 {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name may hold spaces; the fields after it start two bytes past its ')'.
	fields := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+2:])
	if len(fields) < 13 {
		return -1
	}
	utime, _ := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, _ := strconv.ParseInt(string(fields[12]), 10, 64)
	return float64(utime+stime) * 1000 / userHz
}

// VmRSS and VmHWM (peak resident set) of process `pid` in KiB, or -1 when unknown.
func memoryOf(pid int) (rss, hwm int64) {
	rss, hwm = -1, -1
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if name, value, ok := bytes.Cut(line, []byte(":")); ok {
			kib := func() int64 {
				n, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(value), []byte(" kB"))), 10, 64)
				return n
			}
			switch string(name) {
			case "VmRSS":
				rss = kib()
			case "VmHWM":
				hwm = kib()
			}
		}
	}
	return
}

// User + system CPU time of this process so far, in ms.
func ownCPUMs() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	ms := func(t syscall.Timeval) float64 { return float64(t.Sec)*1000 + float64(t.Usec)/1000 }
	return ms(ru.Utime) + ms(ru.Stime)
}
