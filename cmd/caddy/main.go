// Command caddy is Caddy with the standard modules and the webhooks plugin,
// the same build that xcaddy produces with this module.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// The standard Caddy modules and this plugin.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-webhooks/caddy-webhooks"
)

func main() {
	caddycmd.Main()
}
