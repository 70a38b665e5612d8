module github.com/remote-runner/testground-infra

go 1.21

require github.com/testground/sync-service v0.1.0
