//go:build race

package main

// raceEnabled is true when the tests run under the race detector. The smoke
// test then builds Caddy with it too, which shares Go's build cache with
// the integration tests of the root package.
const raceEnabled = true
