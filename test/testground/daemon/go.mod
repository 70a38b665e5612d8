module github.com/remote-runner/testground-daemon

go 1.21

require github.com/testground/testground v0.6.0
