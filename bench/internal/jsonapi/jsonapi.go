// Package jsonapi is the small JSON API that the load tests put behind
// Caddy: GET /items/<id> returns a JSON object of about 70 bytes.
package jsonapi

import (
	"net/http"
	"strconv"
	"strings"
)

// ItemsPath is the path prefix of the API's one resource.
const ItemsPath = "/items/"

// Handler returns the API's handler. GET /items/<id> with a positive
// integer id responds 200 with the item as JSON, an invalid id 404, and
// other methods 405.
func Handler() http.Handler {
	return http.HandlerFunc(serveItem)
}

func serveItem(w http.ResponseWriter, r *http.Request) {
	idText, ok := strings.CutPrefix(r.URL.Path, ItemsPath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	id, err := strconv.ParseUint(idText, 10, 32)
	if err != nil || id == 0 {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	body := make([]byte, 0, 96)
	body = append(body, `{"id":`...)
	body = strconv.AppendUint(body, id, 10)
	body = append(body, `,"name":"item `...)
	body = strconv.AppendUint(body, id, 10)
	body = append(body, `","price":12.5,"currency":"EUR","in_stock":true}`...)

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
