// Package webhooks is a Caddy plugin that turns the API calls Caddy proxies
// into events and delivers them to subscribers as signed webhooks.
//
// The HTTP handler http.handlers.webhooks matches requests and responses to
// named events. The webhooks app publishes them to NATS JetStream (embedded
// by default) and runs the delivery workers.
package webhooks
