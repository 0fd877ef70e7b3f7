package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// destination is a destination as the admin API returns it.
type destination struct {
	Name         string       `json:"name"`
	Kind         string       `json:"kind"`
	URL          string       `json:"url"`
	Events       []string     `json:"events"`
	State        string       `json:"state"`
	StateReason  string       `json:"state_reason"`
	StateSince   string       `json:"state_since"`
	Pending      *uint64      `json:"pending"`
	FailingSince string       `json:"failing_since"`
	LastAttempt  *lastAttempt `json:"last_attempt"`
	LastSuccess  string       `json:"last_success"`
	DeadLetters  *uint64      `json:"dead_letters"`
}

// lastAttempt is the summary of a destination's latest attempt.
type lastAttempt struct {
	Time       string `json:"time"`
	Outcome    string `json:"outcome"`
	StatusCode int    `json:"status_code"`
	ErrorClass string `json:"error_class"`
}

// result formats the outcome, status code and error class of the attempt,
// such as "retry 503 http_status".
func (a *lastAttempt) result() string {
	if a == nil {
		return ""
	}
	parts := []string{a.Outcome}
	if a.StatusCode != 0 {
		parts = append(parts, fmt.Sprint(a.StatusCode))
	}
	if a.ErrorClass != "" {
		parts = append(parts, a.ErrorClass)
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// attemptTime returns the time of the attempt, or "" without one.
func (a *lastAttempt) attemptTime() string {
	if a == nil {
		return ""
	}
	return a.Time
}

// destinationPath returns the admin API path of the destination name, with
// suffix appended.
func destinationPath(name, suffix string) string {
	return "/webhooks/destinations/" + url.PathEscape(name) + suffix
}

func destinationsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "destinations [NAME]",
		Short: "Lists destinations, or shows one",
		Long: `
Lists the configured destinations ordered by name with their state, the number
of events waiting for delivery (PENDING), dead letters (DEAD) and their latest
attempt. With NAME, shows that destination in detail.
`,
		Args: argNames(nil, "NAME"),
		RunE: runDestinations,
	}
	addAdminFlags(cmd)
	return cmd
}

func runDestinations(cmd *cobra.Command, args []string) error {
	client, err := newAdminClient(cmd)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		data, err := client.get(destinationPath(args[0], ""), nil)
		if err != nil {
			return err
		}
		return showDestination(cmd, data)
	}

	data, err := client.get("/webhooks/destinations", nil)
	if err != nil {
		return err
	}
	if jsonOutput(cmd) {
		return writeIndentedJSON(cmd.OutOrStdout(), data)
	}
	var list struct {
		Destinations []destination `json:"destinations"`
	}
	if err := decodeResponse(data, "destination list", &list); err != nil {
		return err
	}
	return writeDestinationTable(cmd.OutOrStdout(), list.Destinations)
}

func writeDestinationTable(w io.Writer, destinations []destination) error {
	t := newTable(w, "NAME", "KIND", "STATE", "PENDING", "DEAD", "LAST ATTEMPT", "RESULT", "LAST SUCCESS", "EVENTS", "URL")
	for _, d := range destinations {
		t.row(d.Name, d.Kind, d.State, formatCount(d.Pending), formatCount(d.DeadLetters),
			formatTime(d.LastAttempt.attemptTime()), d.LastAttempt.result(), formatTime(d.LastSuccess),
			joinList(d.Events), d.URL)
	}
	return t.flush()
}

// showDestination prints the destination in a response, in detail or as
// JSON.
func showDestination(cmd *cobra.Command, data []byte) error {
	if jsonOutput(cmd) {
		return writeIndentedJSON(cmd.OutOrStdout(), data)
	}
	var d destination
	if err := decodeResponse(data, "destination", &d); err != nil {
		return err
	}
	return writeDestinationDetail(cmd.OutOrStdout(), d)
}

func writeDestinationDetail(w io.Writer, d destination) error {
	state := d.State
	if d.StateReason != "" {
		state += " (" + d.StateReason + ")"
	}
	if d.StateSince != "" {
		state += " since " + formatTime(d.StateSince)
	}

	t := newTable(w)
	t.row("name", d.Name)
	t.row("kind", d.Kind)
	t.row("url", d.URL)
	t.row("events", joinList(d.Events))
	t.row("state", state)
	t.row("pending", formatCount(d.Pending))
	t.row("failing since", formatTime(d.FailingSince))
	if d.LastAttempt != nil {
		t.row("last attempt", formatTime(d.LastAttempt.Time)+" "+d.LastAttempt.result())
	} else {
		t.row("last attempt", "")
	}
	t.row("last success", formatTime(d.LastSuccess))
	t.row("dead letters", formatCount(d.DeadLetters))
	return t.flush()
}

// stateCommand returns the pause, resume or enable subcommand, which posts
// to the route of the same name and prints the destination it returns.
func stateCommand(action, short, long string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Long:  "\n" + long + "\n",
		Args:  argNames([]string{"NAME"}),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			data, err := client.post(destinationPath(args[0], "/"+action), nil)
			if err != nil {
				return err
			}
			return showDestination(cmd, data)
		},
	}
	addAdminFlags(cmd)
	return cmd
}

func testCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test NAME",
		Short: "Sends a test event to a destination",
		Long: `
Sends an event of type webhooks.test to the destination NAME alone, through the
same queue, signing and retries as every other event, and prints its id.
`,
		Args: argNames([]string{"NAME"}),
		RunE: runTest,
	}
	addAdminFlags(cmd)
	return cmd
}

func runTest(cmd *cobra.Command, args []string) error {
	data, err := callAdmin(cmd, func(c *adminClient) ([]byte, error) { return c.post(destinationPath(args[0], "/test"), nil) })
	if err != nil || data == nil {
		return err
	}
	var sent struct {
		EventID string `json:"event_id"`
		Type    string `json:"type"`
	}
	if err := decodeResponse(data, "test event", &sent); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "queued test event %s (%s) for destination %s\nfollow its attempts with: caddy webhooks event %s\n",
		cleanCell(sent.EventID), cleanCell(sent.Type), cleanCell(args[0]), cleanCell(sent.EventID))
	return err
}

func replayCommand(now func() time.Time) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay NAME (--dead | --since TIME [--until TIME])",
		Short: "Sends dead letters or past events to a destination again",
		Long: `
Sends events to the destination NAME again, with their original webhook-id and
payload, to that destination alone.

--dead replays the destination's dead letters, each once.
--since replays every stored event since TIME (until --until, if given) that
the destination subscribes to, whatever its earlier outcome.

TIME is an RFC 3339 time such as 2026-12-04T10:00:00Z, or a duration before
now such as 90m or 2d.
`,
		Args: argNames([]string{"NAME"}),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd, args, now)
		},
	}
	addAdminFlags(cmd)
	cmd.Flags().Bool("dead", false, "Replay the destination's dead letters")
	cmd.Flags().String("since", "", "Replay the events stored since this time")
	cmd.Flags().String("until", "", "With --since, replay only the events stored before this time")
	return cmd
}

// replayRequest is the body of the replay route.
type replayRequest struct {
	DeadLetters bool   `json:"dead_letters,omitempty"`
	Since       string `json:"since,omitempty"`
	Until       string `json:"until,omitempty"`
}

func runReplay(cmd *cobra.Command, args []string, now func() time.Time) error {
	request, err := replayRequestFromFlags(cmd, now)
	if err != nil {
		return err
	}
	data, err := callAdmin(cmd, func(c *adminClient) ([]byte, error) { return c.post(destinationPath(args[0], "/replay"), request) })
	if err != nil || data == nil {
		return err
	}

	var replayed struct {
		Replayed int `json:"replayed"`
	}
	if err := decodeResponse(data, "replay result", &replayed); err != nil {
		return err
	}
	count := countNoun(replayed.Replayed, "event", "events")
	if request.DeadLetters {
		count = countNoun(replayed.Replayed, "dead letter", "dead letters")
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "replaying %s to destination %s\n", count, cleanCell(args[0]))
	return err
}

// replayRequestFromFlags checks that exactly one of --dead and --since is
// set and builds the request body.
func replayRequestFromFlags(cmd *cobra.Command, now func() time.Time) (replayRequest, error) {
	flags := cmd.Flags()
	dead, _ := flags.GetBool("dead")
	since, _ := flags.GetString("since")
	until, _ := flags.GetString("until")

	switch {
	case dead && (since != "" || until != ""):
		return replayRequest{}, fmt.Errorf("--dead cannot be combined with --since or --until: replay dead letters and a time range in two runs")
	case dead:
		return replayRequest{DeadLetters: true}, nil
	case since == "" && until != "":
		return replayRequest{}, fmt.Errorf("--until needs --since: add --since TIME to replay the events between the two times")
	case since == "":
		return replayRequest{}, fmt.Errorf("missing --dead or --since: choose what to replay: usage: %s", cmd.UseLine())
	}

	request := replayRequest{}
	var err error
	if request.Since, err = parseTimeFlag("since", since, now); err != nil {
		return replayRequest{}, err
	}
	if until != "" {
		if request.Until, err = parseTimeFlag("until", until, now); err != nil {
			return replayRequest{}, err
		}
	}
	return request, nil
}
