module github.com/remote-runner/go-sync-peer

go 1.21

require (
	github.com/testground/sync-service v0.1.0
	github.com/testground/testground v0.5.3
)

require (
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/hashicorp/go-multierror v1.1.0 // indirect
	github.com/klauspost/compress v1.10.3 // indirect
	go.uber.org/atomic v1.6.0 // indirect
	go.uber.org/multierr v1.5.0 // indirect
	go.uber.org/zap v1.16.0 // indirect
	nhooyr.io/websocket v1.8.6 // indirect
)
