// Command go-sync-peer serves Testground's own sync service (github.com/testground/sync-service)
// on a chosen port, so the conformance suite can compare our service against it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	sync "github.com/testground/sync-service"
	"github.com/testground/testground/pkg/logging"
)

func main() {
	port := flag.Int("port", 0, "TCP port to listen on (0 picks a free one)")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	service, err := sync.NewDefaultService(ctx, logging.S())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err := sync.NewServer(service, *port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ws://127.0.0.1:%d\n", srv.Port())

	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
