// Package cli adds the `caddy webhooks` command: subcommands that call the
// webhooks admin API of a running Caddy, and `verify`, which checks a
// Standard Webhooks signature offline.
package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "webhooks",
		Usage: "<subcommand> [flags]",
		Short: "Inspects and operates webhook deliveries of a running Caddy",
		Long: `
Inspects and operates the webhooks plugin of a running Caddy through its admin
API: destinations and their state, stored events with their attempts, dead
letters, the event type catalogue, redelivery, replay, pause, resume, enable and
test events. The verify subcommand checks a Standard Webhooks signature offline
and needs no running Caddy.

The admin API address is found as in 'caddy stop': --address if given, else the
admin listen address in the --config file (with --adapter), else the default
localhost:2019 or the CADDY_ADMIN environment variable.

Output is an aligned table. Times are shown in UTC without milliseconds, and a
missing value is shown as "-". Add --json for the admin API's JSON response,
which has every field at full precision.
`,
		CobraFunc: func(cmd *cobra.Command) {
			addSubcommands(cmd, time.Now)
		},
	})
}

// addSubcommands adds every subcommand to cmd. now is the clock for
// durations such as --since 2h.
func addSubcommands(cmd *cobra.Command, now func() time.Time) {
	cmd.AddCommand(
		destinationsCommand(),
		eventsCommand(now),
		eventCommand(),
		deadCommand(),
		purgeDeadCommand(),
		eventTypesCommand(),
		redeliverCommand(),
		replayCommand(now),
		stateCommand("pause", "Pauses deliveries to a destination",
			"Pauses deliveries to the destination NAME. Its events wait in its queue\nand are delivered after 'caddy webhooks resume NAME'."),
		stateCommand("resume", "Resumes deliveries to a paused destination",
			"Resumes deliveries to the paused destination NAME, starting with the\nevents that waited while it was paused."),
		stateCommand("enable", "Enables a disabled destination",
			"Enables the destination NAME after Caddy disabled it (after a 410 Gone\nresponse or a long run of failures). Its queued events flow again."),
		testCommand(),
		verifyCommand(now),
	)
}

// argNames returns a cobra.PositionalArgs that accepts the required names
// and up to len(optional) more, with an error that names what is missing or
// extra.
func argNames(required []string, optional ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(required) {
			return fmt.Errorf("missing %s: usage: %s", strings.Join(required[len(args):], " and "), cmd.UseLine())
		}
		if len(args) > len(required)+len(optional) {
			return fmt.Errorf("unexpected argument %q: usage: %s", args[len(required)+len(optional)], cmd.UseLine())
		}
		return nil
	}
}

// jsonOutput reports whether --json is set.
func jsonOutput(cmd *cobra.Command) bool {
	asJSON, _ := cmd.Flags().GetBool("json")
	return asJSON
}

// parseTimeFlag converts the value of a time flag to the admin API's format.
// The value is an RFC 3339 time, or a duration such as 90m or 2d that counts
// back from now.
func parseTimeFlag(flag, value string, now func() time.Time) (string, error) {
	if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return t.UTC().Format(delivery.TimeFormat), nil
	}
	ago, err := parseAgo(value)
	if err != nil {
		return "", fmt.Errorf("invalid --%s %q: use an RFC 3339 time such as 2026-12-04T10:00:00Z, or a duration before now such as 90m or 2d", flag, value)
	}
	return now().Add(-ago).UTC().Format(delivery.TimeFormat), nil
}

// parseAgo parses a positive Go duration, or a whole number of days with the
// suffix d.
func parseAgo(value string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(value, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("invalid number of days %q", days)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q is not positive", value)
	}
	return d, nil
}
