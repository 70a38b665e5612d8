package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The phases, in the order they run; each ends when the last client is through it.
const (
	phaseConnect = iota
	phaseSignal
	phaseBarrier
	phasePubSub
	phaseCount
)

var phaseNames = [phaseCount]string{"connect", "signal_entry", "barrier", "pubsub"}

// Request ids: every client sends each request once, so one fixed id per kind.
const (
	idEntry     = "1"
	idBarrier   = "2"
	idSubscribe = "3"
	idPublish   = "4"
)

// What a phase took, and the service's state at its end.
type phaseResult struct {
	Name string `json:"name"`
	// Wall time from the phase's start to its last client, in ms.
	Ms float64 `json:"ms"`
	// CPU time (user + system) the service and this program used in the phase, in ms.
	ServerCPUMs float64 `json:"serverCpuMs"`
	LoadCPUMs   float64 `json:"loadCpuMs"`
	// The service's resident set at the phase's end, in KiB.
	ServerRSSKiB int64 `json:"serverRssKiB"`
}

type pubsubResult struct {
	// False when the bound ran out first; the figures are then how far it got.
	Finished  bool  `json:"finished"`
	Delivered int64 `json:"delivered"`
	Expected  int64 `json:"expected"`
	// Clients that had read every message when it ended.
	ClientsDone int64 `json:"clientsDone"`
}

type result struct {
	Clients      int           `json:"clients"`
	Publishers   int           `json:"publishers"`
	DialParallel int           `json:"dialParallel"`
	Phases       []phaseResult `json:"phases"`
	PubSub       pubsubResult  `json:"pubsub"`
	// The service's peak resident set (VmHWM) at the end, in KiB.
	ServerPeakRSSKiB int64 `json:"serverPeakRssKiB"`
}

// A response frame, decoded only for the few frames that are not subscription messages.
type response struct {
	ID          string             `json:"id"`
	Error       string             `json:"error"`
	Publish     *struct{ Seq int } `json:"publish"`
	Subscribe   string             `json:"subscribe"`
	SignalEntry *struct{ Seq int } `json:"signal_entry"`
}

type mark struct {
	at     time.Time
	sample sample
}

// One run of the load against one service.
type load struct {
	cfg    config
	state  string
	topic  string
	dialer websocket.Dialer
	dials  chan struct{}

	signalGate chan struct{}
	pubsubGate chan struct{}

	connected atomic.Int64
	entered   atomic.Int64
	released  atomic.Int64
	done      atomic.Int64

	// marks[p] is set once, by the last client through phase p or at pub/sub's bound.
	marksMu  sync.Mutex
	marked   [phaseCount]bool
	marks    [phaseCount]mark
	reached  [phaseCount]chan struct{}
	failed   chan struct{}
	failOnce sync.Once
	err      error
	// Set once the run is over: connections closing then are no failure.
	over atomic.Bool

	clients []*client
}

type client struct {
	index     int
	publisher bool
	conn      atomic.Pointer[websocket.Conn]
	buf       []byte
	entrySeq  int
	pubSeq    atomic.Int64
	delivered atomic.Int64
	seen      []uint64
}

func run(cfg config) (*result, error) {
	l := &load{
		cfg:   cfg,
		state: cfg.prefix + ":states:ready",
		topic: cfg.prefix + ":topics:all",
		dialer: websocket.Dialer{
			// No keepalive probes: a client waiting its turn in pub/sub is idle by design.
			NetDial:          (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}).Dial,
			HandshakeTimeout: 30 * time.Second,
			ReadBufferSize:   4096,
			WriteBufferSize:  512,
		},
		dials:      make(chan struct{}, cfg.dialParallel),
		signalGate: make(chan struct{}),
		pubsubGate: make(chan struct{}),
		failed:     make(chan struct{}),
		clients:    make([]*client, cfg.clients),
	}
	for p := range l.reached {
		l.reached[p] = make(chan struct{})
	}
	for i := range l.clients {
		l.clients[i] = &client{index: i, publisher: i < cfg.publishers, buf: make([]byte, 0, 512), seen: make([]uint64, (cfg.publishers+63)/64)}
	}
	defer l.closeAll()

	res := &result{Clients: cfg.clients, Publishers: cfg.publishers, DialParallel: cfg.dialParallel}
	start := mark{time.Now(), takeSample(cfg.serverPid)}
	for _, c := range l.clients {
		go l.script(c)
	}
	if err := l.await(phaseConnect, cfg.phaseTimeout); err != nil {
		return nil, err
	}
	res.Phases = append(res.Phases, l.phase(phaseConnect, start))

	gate := mark{time.Now(), takeSample(cfg.serverPid)}
	close(l.signalGate)
	if err := l.await(phaseSignal, cfg.phaseTimeout); err != nil {
		return nil, err
	}
	res.Phases = append(res.Phases, l.phase(phaseSignal, gate))
	if err := l.await(phaseBarrier, cfg.phaseTimeout); err != nil {
		return nil, err
	}
	res.Phases = append(res.Phases, l.phase(phaseBarrier, l.mark(phaseSignal)))
	if err := l.checkEntries(); err != nil {
		return nil, err
	}

	gate = mark{time.Now(), takeSample(cfg.serverPid)}
	close(l.pubsubGate)
	stopProgress := l.reportProgress(gate.at)
	err := l.await(phasePubSub, cfg.pubsubTimeout)
	close(stopProgress)
	switch {
	case err == nil:
		res.PubSub.Finished = true
		if err := l.checkPublishes(); err != nil {
			return nil, err
		}
	case err == errTimeout:
		// Not finished within the bound: the phase's figures are those at the bound.
		l.over.Store(true)
		l.setMark(phasePubSub)
	default:
		return nil, err
	}
	res.Phases = append(res.Phases, l.phase(phasePubSub, gate))
	res.PubSub.Expected = int64(cfg.clients) * int64(cfg.publishers)
	for _, c := range l.clients {
		res.PubSub.Delivered += c.delivered.Load()
		if c.delivered.Load() == int64(cfg.publishers) {
			res.PubSub.ClientsDone++
		}
	}
	if cfg.serverPid > 0 {
		_, res.ServerPeakRSSKiB = memoryOf(cfg.serverPid)
	}
	return res, nil
}

var errTimeout = fmt.Errorf("bound reached")

// Wait until the last client is through phase `p`, a client fails, or `bound` passes.
func (l *load) await(p int, bound time.Duration) error {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-l.reached[p]:
		return nil
	case <-l.failed:
		return l.err
	case <-timer.C:
		if p == phasePubSub {
			return errTimeout
		}
		return fmt.Errorf("%s: not done within %s (%d of %d clients through connect, %d signal_entry, %d barrier)",
			phaseNames[p], bound, l.connected.Load(), l.cfg.clients, l.entered.Load(), l.released.Load())
	}
}

// Record that the last client is through phase `p`; called by that client.
func (l *load) reach(p int) {
	if l.setMark(p) {
		close(l.reached[p])
	}
}

// Mark the end of phase `p` now, unless it is marked already; true if this call marked it.
func (l *load) setMark(p int) bool {
	m := mark{time.Now(), takeSample(l.cfg.serverPid)}
	l.marksMu.Lock()
	defer l.marksMu.Unlock()
	if l.marked[p] {
		return false
	}
	l.marked[p], l.marks[p] = true, m
	return true
}

func (l *load) mark(p int) mark {
	l.marksMu.Lock()
	defer l.marksMu.Unlock()
	return l.marks[p]
}

func (l *load) phase(p int, from mark) phaseResult {
	to := l.mark(p)
	return phaseResult{
		Name:         phaseNames[p],
		Ms:           float64(to.at.Sub(from.at).Microseconds()) / 1000,
		ServerCPUMs:  to.sample.serverCPUMs - from.sample.serverCPUMs,
		LoadCPUMs:    to.sample.loadCPUMs - from.sample.loadCPUMs,
		ServerRSSKiB: to.sample.serverRSS,
	}
}

func (l *load) fail(err error) {
	if l.over.Load() {
		return
	}
	l.failOnce.Do(func() {
		l.err = err
		close(l.failed)
	})
}

func (l *load) closeAll() {
	l.over.Store(true)
	for _, c := range l.clients {
		if conn := c.conn.Load(); conn != nil {
			_ = conn.Close()
		}
	}
}

// One line on stderr every 10 s while pub/sub runs: deliveries so far and their rate.
func (l *load) reportProgress(since time.Time) chan struct{} {
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				var delivered int64
				for _, c := range l.clients {
					delivered += c.delivered.Load()
				}
				s := now.Sub(since).Seconds()
				fmt.Fprintf(os.Stderr, "pubsub: %.0f s: %d of %d messages delivered (%.0f/s), %d of %d clients done\n",
					s, delivered, int64(l.cfg.clients)*int64(l.cfg.publishers), float64(delivered)/s, l.done.Load(), l.cfg.clients)
			}
		}
	}()
	return stop
}

// signal_entry must have handed out 1..N, each once.
func (l *load) checkEntries() error {
	seen := make([]bool, l.cfg.clients+1)
	for _, c := range l.clients {
		if c.entrySeq < 1 || c.entrySeq > l.cfg.clients || seen[c.entrySeq] {
			return fmt.Errorf("signal_entry: client %d got seq %d; expected each of 1..%d once", c.index, c.entrySeq, l.cfg.clients)
		}
		seen[c.entrySeq] = true
	}
	return nil
}

// publish must have handed out 1..P, each once.
func (l *load) checkPublishes() error {
	seen := make([]bool, l.cfg.publishers+1)
	for _, c := range l.clients[:l.cfg.publishers] {
		seq := int(c.pubSeq.Load())
		if seq < 1 || seq > l.cfg.publishers || seen[seq] {
			return fmt.Errorf("publish: client %d got seq %d; expected each of 1..%d once", c.index, seq, l.cfg.publishers)
		}
		seen[seq] = true
	}
	return nil
}

// One client's whole run: connect, signal_entry, barrier, then subscribe, publish and
// read every message. Any surprise fails the run.
func (l *load) script(c *client) {
	if err := l.steps(c); err != nil {
		l.fail(fmt.Errorf("client %d: %w", c.index, err))
	}
}

func (l *load) steps(c *client) error {
	l.dials <- struct{}{}
	conn, _, err := l.dialer.Dial(l.cfg.url, nil)
	<-l.dials
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	c.conn.Store(conn)
	if l.over.Load() {
		_ = conn.Close()
		return nil
	}
	n := int64(l.cfg.clients)
	if l.connected.Add(1) == n {
		l.reach(phaseConnect)
	}
	if !l.wait(l.signalGate) {
		return nil
	}

	if err := l.send(c, idEntry, fmt.Sprintf(`"signal_entry":{"state":%q}`, l.state)); err != nil {
		return err
	}
	r, err := l.answer(c, idEntry)
	if err != nil || r.SignalEntry == nil {
		return fmt.Errorf("signal_entry: %v (answer %+v)", err, r)
	}
	c.entrySeq = r.SignalEntry.Seq
	if l.entered.Add(1) == n {
		l.reach(phaseSignal)
	}
	if err := l.send(c, idBarrier, fmt.Sprintf(`"barrier":{"state":%q,"target":%d}`, l.state, l.cfg.clients)); err != nil {
		return err
	}
	if _, err := l.answer(c, idBarrier); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	if l.released.Add(1) == n {
		l.reach(phaseBarrier)
	}
	if !l.wait(l.pubsubGate) {
		return nil
	}

	if err := l.send(c, idSubscribe, fmt.Sprintf(`"subscribe":{"topic":%q}`, l.topic)); err != nil {
		return err
	}
	acked := !c.publisher
	if c.publisher {
		if err := l.send(c, idPublish, fmt.Sprintf(`"publish":{"topic":%q,"payload":{"from":%d}}`, l.topic, c.index)); err != nil {
			return err
		}
	}
	want := int64(l.cfg.publishers)
	subPrefix := []byte(`{"id":"` + idSubscribe + `","error":"",`)
	for !acked || c.delivered.Load() < want {
		frame, err := c.next()
		if err != nil {
			if l.over.Load() {
				return nil
			}
			return fmt.Errorf("pub/sub: read after %d messages: %w", c.delivered.Load(), err)
		}
		if bytes.HasPrefix(frame, subPrefix) {
			if err := c.take(frame, l.cfg.publishers); err != nil {
				return err
			}
			continue
		}
		r, err := decode(frame)
		if err != nil {
			return err
		}
		if r.ID != idPublish || r.Error != "" || r.Publish == nil {
			return fmt.Errorf("pub/sub: unexpected frame %s", truncate(frame))
		}
		c.pubSeq.Store(int64(r.Publish.Seq))
		acked = true
	}
	if l.done.Add(1) == n {
		l.reach(phasePubSub)
	}
	return nil
}

// Wait for `gate`; false when the run failed first.
func (l *load) wait(gate chan struct{}) bool {
	select {
	case <-gate:
		return true
	case <-l.failed:
		return false
	}
}

// Send request `id` with the operation `op`, a JSON object's members.
func (l *load) send(c *client, id, op string) error {
	frame := `{"id":"` + id + `",` + op + `}`
	if err := c.conn.Load().WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		return fmt.Errorf("send %s: %w", frame, err)
	}
	return nil
}

// Read the answer to request `id`, which must be the next frame and carry no error.
func (l *load) answer(c *client, id string) (*response, error) {
	frame, err := c.next()
	if err != nil {
		return nil, err
	}
	r, err := decode(frame)
	if err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, fmt.Errorf("expected the answer to request %s, got %s", id, truncate(frame))
	}
	if r.Error != "" {
		return nil, fmt.Errorf("error: %s", r.Error)
	}
	return r, nil
}

var fromKey = []byte(`\"from\":`)

// Count one subscription message: it must come from a publisher not seen before.
func (c *client) take(frame []byte, publishers int) error {
	k := bytes.Index(frame, fromKey)
	if k < 0 {
		return fmt.Errorf("pub/sub: a message without its sender: %s", truncate(frame))
	}
	digits := frame[k+len(fromKey):]
	end := bytes.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(digits)
	}
	from, err := strconv.Atoi(string(digits[:end]))
	if err != nil || from < 0 || from >= publishers {
		return fmt.Errorf("pub/sub: a message from an unknown sender: %s", truncate(frame))
	}
	word, bit := from/64, uint64(1)<<(from%64)
	if c.seen[word]&bit != 0 {
		return fmt.Errorf("pub/sub: the message from %d arrived twice", from)
	}
	c.seen[word] |= bit
	c.delivered.Add(1)
	return nil
}

// The next message on the connection, in a buffer reused from one message to the next.
func (c *client) next() ([]byte, error) {
	_, r, err := c.conn.Load().NextReader()
	if err != nil {
		return nil, err
	}
	c.buf = c.buf[:0]
	for {
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		n, err := r.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err == io.EOF {
			return c.buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func decode(frame []byte) (*response, error) {
	var r response
	if err := json.Unmarshal(frame, &r); err != nil {
		return nil, fmt.Errorf("a frame that is not a response (%v): %s", err, truncate(frame))
	}
	return &r, nil
}

func truncate(frame []byte) string {
	if len(frame) > 300 {
		return string(frame[:300]) + "…"
	}
	return string(frame)
}
