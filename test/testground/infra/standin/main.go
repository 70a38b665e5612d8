// Command standin holds the place of an infrastructure container that Testground's daemon
// checks for but that nothing in the test bed uses (Redis, Grafana). It listens on a port
// and answers whoever connects with an error that says it is a stand-in, so that a client
// that does reach it fails loudly instead of hanging.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	name := flag.String("name", "", "the service this process stands in for, named in its answers")
	proto := flag.String("proto", "", "redis (one RESP error, then close) or http (503 to every request)")
	port := flag.Int("port", 0, "TCP port to listen on")
	flag.Parse()
	if *name == "" || *port <= 0 || (*proto != "redis" && *proto != "http") {
		fmt.Fprintln(os.Stderr, "usage: standin --name NAME --proto redis|http --port PORT")
		os.Exit(2)
	}
	msg := fmt.Sprintf("%s is a stand-in of remote-runner's test bed (scripts/testground): nothing is served here", *name)

	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%s stand-in listening on %s (%s)", *name, ln.Addr(), *proto)

	// As pid 1 of its container it gets no default signal handling: end on SIGTERM itself.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()

	if *proto == "http" {
		log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, msg, http.StatusServiceUnavailable)
		})))
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		// A Redis client reads this as the error reply to its first command.
		_, _ = fmt.Fprintf(conn, "-ERR %s\r\n", msg)
		_ = conn.Close()
	}
}
