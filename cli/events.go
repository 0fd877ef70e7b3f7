package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

// eventSummary is an entry of the event list.
type eventSummary struct {
	ID             string                        `json:"id"`
	Type           string                        `json:"type"`
	Time           string                        `json:"time"`
	StreamSequence uint64                        `json:"stream_sequence"`
	Size           int64                         `json:"size"`
	Destinations   map[string]destinationOutcome `json:"destinations"`
}

// destinationOutcome is the delivery state of one event at one destination.
type destinationOutcome struct {
	Outcome  string `json:"outcome"`
	Attempts int    `json:"attempts"`
}

// eventDetail is one stored event with its attempt log.
type eventDetail struct {
	ID             string                              `json:"id"`
	Type           string                              `json:"type"`
	Time           string                              `json:"time"`
	StreamSequence uint64                              `json:"stream_sequence"`
	Payload        json.RawMessage                     `json:"payload"`
	PayloadBase64  string                              `json:"payload_base64"`
	Attempts       map[string][]delivery.AttemptRecord `json:"attempts"`
}

// eventType is an entry of the event type catalogue.
type eventType struct {
	Type         string   `json:"type"`
	Description  string   `json:"description"`
	Sites        []string `json:"sites"`
	Rules        *uint64  `json:"rules"`
	Destinations []string `json:"destinations"`
	Stored       *uint64  `json:"stored"`
	Delivered    *uint64  `json:"delivered"`
	DeadLetters  *uint64  `json:"dead_letters"`
}

// eventPath returns the admin API path of the event id, with suffix
// appended.
func eventPath(id, suffix string) string {
	return "/webhooks/events/" + url.PathEscape(id) + suffix
}

func eventsCommand(now func() time.Time) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events [--destination D] [--type T] [--outcome O] [--since TIME] [--until TIME] [--limit N] [--all]",
		Short: "Lists stored events, newest first",
		Long: `
Lists the stored events, newest first, with each destination's outcome and, in
parentheses, its number of attempts so far, counting those of copies that
redeliver and replay made.

--type takes an event type or a NATS subject pattern such as order.* (one
token) or order.> (the rest). --outcome is one of success, retry, dead_letter,
disabled and pending. TIME is an RFC 3339 time such as 2026-12-04T10:00:00Z, or
a duration before now such as 90m or 2d.

One request returns one page. When more follow, a hint on stderr gives the
--cursor for the next one; --all reads every page.
`,
		Args: argNames(nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvents(cmd, now)
		},
	}
	addAdminFlags(cmd)
	addPageFlags(cmd, "events")
	cmd.Flags().String("destination", "", "Only events for this destination")
	cmd.Flags().String("type", "", "Only events of this type or NATS subject pattern")
	cmd.Flags().String("outcome", "", "Only events with this outcome at a destination: success, retry, dead_letter, disabled or pending")
	cmd.Flags().String("since", "", "Only events stored since this time")
	cmd.Flags().String("until", "", "Only events stored before this time")
	return cmd
}

func runEvents(cmd *cobra.Command, now func() time.Time) error {
	query, err := eventFilters(cmd, now)
	if err != nil {
		return err
	}
	client, err := newAdminClient(cmd)
	if err != nil {
		return err
	}
	list, err := fetchList(cmd, client, "/webhooks/events", "events", query)
	if err != nil {
		return err
	}
	if jsonOutput(cmd) {
		return writeIndentedJSON(cmd.OutOrStdout(), list.Document)
	}

	events, err := decodeItems[eventSummary](list.Items, "event")
	if err != nil {
		return err
	}
	t := newTable(cmd.OutOrStdout(), "ID", "TYPE", "TIME", "SEQ", "SIZE", "DESTINATIONS")
	for _, ev := range events {
		t.row(ev.ID, ev.Type, formatTime(ev.Time), fmt.Sprint(ev.StreamSequence), formatSize(ev.Size), formatOutcomes(ev.Destinations))
	}
	if err := t.flush(); err != nil {
		return err
	}
	writeMoreHint(cmd, "events", list.NextCursor)
	return nil
}

// eventFilters builds the query of the event list from the filter flags.
// Times given as durations are resolved against now.
func eventFilters(cmd *cobra.Command, now func() time.Time) (url.Values, error) {
	flags := cmd.Flags()
	query := url.Values{}
	for _, name := range []string{"destination", "type", "outcome"} {
		if value, _ := flags.GetString(name); value != "" {
			query.Set(name, value)
		}
	}
	for _, name := range []string{"since", "until"} {
		value, _ := flags.GetString(name)
		if value == "" {
			continue
		}
		resolved, err := parseTimeFlag(name, value, now)
		if err != nil {
			return nil, err
		}
		query.Set(name, resolved)
	}
	return query, nil
}

// formatOutcomes formats each destination's outcome as
// "name=outcome(attempts)", ordered by destination name.
func formatOutcomes(outcomes map[string]destinationOutcome) string {
	parts := make([]string, 0, len(outcomes))
	for _, name := range sortedKeys(outcomes) {
		o := outcomes[name]
		parts = append(parts, fmt.Sprintf("%s=%s(%d)", name, o.Outcome, o.Attempts))
	}
	return strings.Join(parts, " ")
}

func eventCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "event ID",
		Short: "Shows one event with its payload and attempts",
		Long: `
Shows the stored event ID: its type, time and stream sequence, its payload, and
every delivery attempt at each destination, then the start of each response
body that a receiver sent, often its own explanation of a failure. --json
shows the whole stored body, up to 4 KiB. An attempt marked "(copy)"
delivered a copy that redeliver or replay made, and a copy's attempts count
from 1 again.
`,
		Args: argNames([]string{"ID"}),
		RunE: runEvent,
	}
	addAdminFlags(cmd)
	return cmd
}

func runEvent(cmd *cobra.Command, args []string) error {
	data, err := callAdmin(cmd, func(c *adminClient) ([]byte, error) { return c.get(eventPath(args[0], ""), nil) })
	if err != nil || data == nil {
		return err
	}
	var ev eventDetail
	if err := decodeResponse(data, "event", &ev); err != nil {
		return err
	}
	return writeEventDetail(cmd.OutOrStdout(), ev)
}

func writeEventDetail(w io.Writer, ev eventDetail) error {
	header := newTable(w)
	header.row("id", ev.ID)
	header.row("type", ev.Type)
	header.row("time", formatTime(ev.Time))
	header.row("stream sequence", fmt.Sprint(ev.StreamSequence))
	if err := header.flush(); err != nil {
		return err
	}

	if err := writePayload(w, ev); err != nil {
		return err
	}

	if len(ev.Attempts) == 0 {
		_, err := fmt.Fprintln(w, "\nattempts: none")
		return err
	}
	fmt.Fprintln(w, "\nattempts:")
	t := newTable(w, "DESTINATION", "ATTEMPT", "TIME", "OUTCOME", "STATUS", "DURATION", "NEXT ATTEMPT", "ERROR")
	for _, name := range sortedKeys(ev.Attempts) {
		for _, a := range ev.Attempts[name] {
			t.row(name, attemptNumber(ev, a), formatTime(a.Time), a.Outcome, formatStatus(a.StatusCode),
				formatDurationMS(a.DurationMS), formatTime(a.NextAttempt), attemptError(a.ErrorClass, a.Error))
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	return writeResponses(w, ev)
}

// attemptNumber formats the attempt's number, marked "(copy)" when the
// attempt delivered a copy that redeliver or replay made. A copy is a message
// of its own, so its stream sequence differs from the event's, and its
// attempts count from 1 again.
func attemptNumber(ev eventDetail, a delivery.AttemptRecord) string {
	if a.StreamSequence != 0 && a.StreamSequence != ev.StreamSequence {
		return fmt.Sprintf("%d (copy)", a.Attempt)
	}
	return fmt.Sprint(a.Attempt)
}

// responseSnippetBytes bounds the response body shown per attempt in the
// table output. The attempt log stores up to 4 KiB, all of it in --json.
const responseSnippetBytes = 200

// writeResponses prints the start of each response body in the attempt
// log, which is often the receiver's own explanation of a failure. Attempts
// without a body are left out, and so is the section when none has one.
func writeResponses(w io.Writer, ev eventDetail) error {
	var rows [][]string
	for _, name := range sortedKeys(ev.Attempts) {
		for _, a := range ev.Attempts[name] {
			if strings.TrimSpace(a.Response) == "" {
				continue
			}
			rows = append(rows, []string{name, attemptNumber(ev, a), formatStatus(a.StatusCode), truncate(a.Response, responseSnippetBytes)})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nresponse bodies (up to %d bytes each, --json shows up to 4 KiB):\n", responseSnippetBytes)
	t := newTable(w, "DESTINATION", "ATTEMPT", "STATUS", "BODY")
	for _, row := range rows {
		t.row(row...)
	}
	return t.flush()
}

// writePayload prints the event's payload, indented when it is JSON.
func writePayload(w io.Writer, ev eventDetail) error {
	switch {
	case len(ev.Payload) > 0:
		var indented bytes.Buffer
		if err := json.Indent(&indented, ev.Payload, "", "  "); err != nil {
			return fmt.Errorf("indenting the payload of event %q: %w", ev.ID, err)
		}
		_, err := fmt.Fprintf(w, "\npayload:\n%s\n", cleanText(indented.String()))
		return err
	case ev.PayloadBase64 != "":
		_, err := fmt.Fprintf(w, "\npayload (not JSON, in base64):\n%s\n", cleanText(ev.PayloadBase64))
		return err
	default:
		_, err := fmt.Fprintln(w, "\npayload: none")
		return err
	}
}

// attemptError joins an attempt's error class and error text, such as
// "timeout: context deadline exceeded".
func attemptError(class, text string) string {
	switch {
	case class == "":
		return text
	case text == "":
		return class
	default:
		return class + ": " + text
	}
}

func redeliverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redeliver ID [--destination D]",
		Short: "Delivers an event again",
		Long: `
Delivers the stored event ID again with its original webhook-id and payload:
to the destination D with --destination, or else to every destination that
subscribes to its type.
`,
		Args: argNames([]string{"ID"}),
		RunE: runRedeliver,
	}
	addAdminFlags(cmd)
	cmd.Flags().String("destination", "", "Redeliver to this destination only")
	return cmd
}

func runRedeliver(cmd *cobra.Command, args []string) error {
	destinationName, _ := cmd.Flags().GetString("destination")
	body := struct {
		Destination string `json:"destination,omitempty"`
	}{Destination: destinationName}

	data, err := callAdmin(cmd, func(c *adminClient) ([]byte, error) { return c.post(eventPath(args[0], "/redeliver"), body) })
	if err != nil || data == nil {
		return err
	}

	var result struct {
		Redelivered []struct {
			Destination string `json:"destination"`
			EventID     string `json:"event_id"`
		} `json:"redelivered"`
	}
	if err := decodeResponse(data, "redelivery result", &result); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if len(result.Redelivered) == 0 {
		_, err := fmt.Fprintf(out, "the admin API queued event %s for no destination\n", cleanCell(args[0]))
		return err
	}
	for _, r := range result.Redelivered {
		if _, err := fmt.Fprintf(out, "queued event %s for redelivery to destination %s\n", cleanCell(r.EventID), cleanCell(r.Destination)); err != nil {
			return err
		}
	}
	return nil
}

func eventTypesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "event-types",
		Short: "Lists the event types with their descriptions and counts",
		Long: `
Lists the event types that the configured rules emit: the sites and number of
rules that emit each, the destinations that subscribe to it, how many events
of it are stored, delivered and dead-lettered, and its description. The types
of the events that the app publishes itself, such as
webhooks.event.dead_lettered, are listed with 0 rules. DELIVERED counts every
successful delivery, a copy from redeliver or replay too.
`,
		Args: argNames(nil),
		RunE: runEventTypes,
	}
	addAdminFlags(cmd)
	return cmd
}

func runEventTypes(cmd *cobra.Command, _ []string) error {
	data, err := callAdmin(cmd, func(c *adminClient) ([]byte, error) { return c.get("/webhooks/event-types", nil) })
	if err != nil || data == nil {
		return err
	}
	var catalogue struct {
		EventTypes []eventType `json:"event_types"`
	}
	if err := decodeResponse(data, "event type catalogue", &catalogue); err != nil {
		return err
	}

	t := newTable(cmd.OutOrStdout(), "TYPE", "RULES", "SITES", "DESTINATIONS", "STORED", "DELIVERED", "DEAD", "DESCRIPTION")
	for _, et := range catalogue.EventTypes {
		t.row(et.Type, formatCount(et.Rules), joinList(et.Sites), joinList(et.Destinations),
			formatCount(et.Stored), formatCount(et.Delivered), formatCount(et.DeadLetters), et.Description)
	}
	return t.flush()
}
