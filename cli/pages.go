package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// addPageFlags adds the pagination flags of the list routes.
func addPageFlags(cmd *cobra.Command, items string) {
	cmd.Flags().Int("limit", 0, "Maximum number of "+items+" per request (the admin API's default is 100, its maximum 1000)")
	cmd.Flags().String("cursor", "", "Continue after the previous page: the next_cursor it printed")
	cmd.Flags().Bool("all", false, "Follow next_cursor to the last page and print all "+items)
}

// listResult contains the entries and cursor that fetchList read from a
// list route.
type listResult struct {
	// Items contains the list entries of every page read.
	Items []json.RawMessage

	// NextCursor is the cursor of the following page, "" after the last.
	NextCursor string

	// Document is the first page's response body when only one page was
	// requested, or a document with every item under the list key.
	Document []byte
}

// fetchList reads a list route whose entries are under key, with the
// --limit and --cursor flags added to query. With --all it follows
// next_cursor to the last page.
func fetchList(cmd *cobra.Command, client *adminClient, path, key string, query url.Values) (listResult, error) {
	flags := cmd.Flags()
	all, _ := flags.GetBool("all")
	cursor, _ := flags.GetString("cursor")
	if flags.Changed("limit") {
		limit, _ := flags.GetInt("limit")
		query.Set("limit", strconv.Itoa(limit))
	}

	result := listResult{Items: []json.RawMessage{}}
	seen := make(map[string]bool)
	for {
		if cursor != "" {
			query.Set("cursor", cursor)
		}
		data, err := client.get(path, query)
		if err != nil {
			return listResult{}, err
		}
		var page map[string]json.RawMessage
		if err := decodeResponse(data, key+" page", &page); err != nil {
			return listResult{}, err
		}
		var items []json.RawMessage
		if raw, ok := page[key]; ok {
			if err := decodeResponse(raw, key, &items); err != nil {
				return listResult{}, err
			}
		}
		result.Items = append(result.Items, items...)
		result.NextCursor = ""
		if raw, ok := page["next_cursor"]; ok {
			if err := decodeResponse(raw, "next_cursor", &result.NextCursor); err != nil {
				return listResult{}, err
			}
		}

		if !all {
			result.Document = data
			return result, nil
		}
		if result.NextCursor == "" {
			break
		}
		if seen[result.NextCursor] {
			return listResult{}, fmt.Errorf("following next_cursor of %s: the admin API returned cursor %q twice, so --all stops to avoid a loop", path, result.NextCursor)
		}
		seen[result.NextCursor] = true
		cursor = result.NextCursor
	}

	document, err := json.Marshal(map[string][]json.RawMessage{key: result.Items})
	if err != nil {
		return listResult{}, fmt.Errorf("encoding every page of %s: %w", path, err)
	}
	result.Document = document
	return result, nil
}

// decodeItems decodes every list entry into a value of type T.
func decodeItems[T any](items []json.RawMessage, description string) ([]T, error) {
	decoded := make([]T, len(items))
	for i, item := range items {
		if err := decodeResponse(item, description, &decoded[i]); err != nil {
			return nil, err
		}
	}
	return decoded, nil
}

// writeMoreHint prints on stderr how to request the next page, when there
// is one.
func writeMoreHint(cmd *cobra.Command, items, cursor string) {
	if cursor == "" {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "more %s follow: add --cursor %s for the next page, or --all for every page\n", items, cleanCell(cursor))
}
