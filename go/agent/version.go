package agent

// Version is what `remote-agent version` prints.
const Version = "0.2.0"
