module github.com/remote-runner/sync-load-go

go 1.21

require github.com/gorilla/websocket v1.4.1
