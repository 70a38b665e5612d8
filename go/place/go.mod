module github.com/remote-runner/remote-runner/go/place

go 1.21
