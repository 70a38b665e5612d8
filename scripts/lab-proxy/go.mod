// The lab's Toxiproxy, which delays shaped lab links: scripts/lab builds
// github.com/Shopify/toxiproxy/v2/cmd/server at this version and caches it.
module github.com/remote-runner/lab-proxy

go 1.22.1

require github.com/Shopify/toxiproxy/v2 v2.9.0
