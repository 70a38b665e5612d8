package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/testground/sdk-go/run"
	"github.com/testground/sdk-go/runtime"
	"github.com/testground/sdk-go/sync"
)

// Peer is what each instance tells the others: its sequence number and host.
type Peer struct {
	Seq      int64  `json:"seq"`
	Hostname string `json:"hostname"`
}

// HostInfo is written to host.json in each instance's outputs.
type HostInfo struct {
	Seq           int64  `json:"seq"`
	Hostname      string `json:"hostname"`
	Group         string `json:"group"`
	InstanceCount int    `json:"instance_count"`
}

var peersTopic = sync.NewTopic("peers", &Peer{})

// placement records the host each instance runs on and learns every other
// instance's host, writing host.json and peers.json to its outputs.
func placement(runenv *runtime.RunEnv, initCtx *run.InitContext) error {
	ctx, cancel := withTimeout(runenv)
	defer cancel()
	client := initCtx.SyncClient
	n := runenv.TestInstanceCount

	seq, err := client.SignalEntry(ctx, "placement")
	if err != nil {
		return fmt.Errorf("taking a sequence number: %w", err)
	}
	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("reading the host name: %w", err)
	}
	info := HostInfo{Seq: seq, Hostname: hostname, Group: runenv.TestGroupID, InstanceCount: n}
	if err := writeJSON(runenv, "host.json", info); err != nil {
		return err
	}

	if _, err := client.Publish(ctx, peersTopic, &Peer{Seq: seq, Hostname: hostname}); err != nil {
		return fmt.Errorf("publishing this instance: %w", err)
	}
	peers, err := collectPeers(ctx, client, n)
	if err != nil {
		return err
	}

	// Stay until every instance has its list, so none leaves the run early.
	if _, err := client.SignalAndWait(ctx, "done", n); err != nil {
		return fmt.Errorf("waiting for all %d instances to finish: %w", n, err)
	}
	if err := writeJSON(runenv, "peers.json", peers); err != nil {
		return err
	}
	runenv.RecordMessage("instance %d of %d on %s", seq, n, hostname)
	return nil
}

// collectPeers reads the peers topic until it holds n instances, sorted by seq.
func collectPeers(ctx context.Context, client sync.Client, n int) ([]Peer, error) {
	ch := make(chan *Peer, n)
	sub, err := client.Subscribe(ctx, peersTopic, ch)
	if err != nil {
		return nil, fmt.Errorf("subscribing to peers: %w", err)
	}
	peers := make([]Peer, 0, n)
	for len(peers) < n {
		select {
		case p := <-ch:
			peers = append(peers, *p)
		case err := <-sub.Done():
			return nil, fmt.Errorf("peers subscription ended after %d of %d instances: %v", len(peers), n, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("heard from %d of %d instances: %w", len(peers), n, ctx.Err())
		}
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].Seq < peers[j].Seq })
	return peers, nil
}
