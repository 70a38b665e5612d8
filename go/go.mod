module github.com/remote-runner/remote-runner/go

go 1.21
