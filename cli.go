package webhooks

// The cli package registers the `caddy webhooks` command in every build that includes this plugin.
import _ "github.com/caddy-webhooks/caddy-webhooks/cli"
