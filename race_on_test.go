//go:build race

package webhooks_test

// raceEnabled is true when the tests run under the race detector, so the
// Caddy binary that the integration tests start is built with it too.
const raceEnabled = true
