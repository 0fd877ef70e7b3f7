package jsonapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
	}{
		{"item", http.MethodGet, "/items/42?seq=7", http.StatusOK},
		{"head", http.MethodHead, "/items/42", http.StatusOK},
		{"id zero", http.MethodGet, "/items/0", http.StatusNotFound},
		{"id not a number", http.MethodGet, "/items/abc", http.StatusNotFound},
		{"other path", http.MethodGet, "/orders", http.StatusNotFound},
		{"post", http.MethodPost, "/items/42", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Handler().ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, nil))
			if w.Code != tt.wantStatus {
				t.Errorf("%s %s: status %d, want %d", tt.method, tt.target, w.Code, tt.wantStatus)
			}
		})
	}
}

func TestHandlerItemJSON(t *testing.T) {
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/items/42", nil))

	var item struct {
		ID    int     `json:"id"`
		Name  string  `json:"name"`
		Price float64 `json:"price"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &item); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body.String(), err)
	}
	if item.ID != 42 || item.Name != "item 42" || item.Price != 12.5 {
		t.Errorf("item = %+v, want id 42, name \"item 42\", price 12.5", item)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
}
