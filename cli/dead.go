package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

// deadLetter is an entry of the dead-letter list: the stored dead letter and
// its sequence in the dead-letter stream.
type deadLetter struct {
	delivery.DeadLetter
	Sequence uint64 `json:"sequence"`
}

func deadCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead [--destination D]",
		Short: "Lists dead letters",
		Long: `
Lists the dead letters: events whose last attempt at a destination failed. Each
stays until 'caddy webhooks replay NAME --dead' delivers it again or
'caddy webhooks purge-dead' deletes it. The --json output includes payloads,
and 'caddy webhooks event ID' shows what the receiver responded.
`,
		Args: argNames(nil),
		RunE: runDead,
	}
	addAdminFlags(cmd)
	addPageFlags(cmd, "dead letters")
	cmd.Flags().String("destination", "", "Only dead letters of this destination")
	return cmd
}

func runDead(cmd *cobra.Command, _ []string) error {
	query := url.Values{}
	if name, _ := cmd.Flags().GetString("destination"); name != "" {
		query.Set("destination", name)
	}
	client, err := newAdminClient(cmd)
	if err != nil {
		return err
	}
	list, err := fetchList(cmd, client, "/webhooks/dead", "dead_letters", query)
	if err != nil {
		return err
	}
	if jsonOutput(cmd) {
		return writeIndentedJSON(cmd.OutOrStdout(), list.Document)
	}

	letters, err := decodeItems[deadLetter](list.Items, "dead letter")
	if err != nil {
		return err
	}
	t := newTable(cmd.OutOrStdout(), "SEQ", "DESTINATION", "EVENT ID", "TYPE", "DEAD SINCE", "ATTEMPTS", "STATUS", "ERROR")
	for _, d := range letters {
		t.row(fmt.Sprint(d.Sequence), d.Destination, d.EventID, d.EventType, formatTime(d.Time),
			fmt.Sprint(d.Attempts), formatStatus(d.StatusCode), attemptError(d.ErrorClass, d.Error))
	}
	if err := t.flush(); err != nil {
		return err
	}
	writeMoreHint(cmd, "dead letters", list.NextCursor)
	return nil
}

func purgeDeadCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "purge-dead DESTINATION [EVENT_ID]",
		Short: "Deletes dead letters without delivering them",
		Long: `
Deletes the dead letters of DESTINATION, or with EVENT_ID only that event's,
without delivering them. It fails when there is nothing to delete.
`,
		Args: argNames([]string{"DESTINATION"}, "EVENT_ID"),
		RunE: runPurgeDead,
	}
	addAdminFlags(cmd)
	return cmd
}

func runPurgeDead(cmd *cobra.Command, args []string) error {
	path := "/webhooks/dead/" + url.PathEscape(args[0])
	if len(args) == 2 {
		path += "/" + url.PathEscape(args[1])
	}
	data, err := callAdmin(cmd, func(c *adminClient) ([]byte, error) { return c.delete(path) })
	if err != nil || data == nil {
		return err
	}

	var result struct {
		Purged int `json:"purged"`
	}
	if err := decodeResponse(data, "purge result", &result); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted %s of destination %s\n",
		countNoun(result.Purged, "dead letter", "dead letters"), cleanCell(args[0]))
	return err
}
