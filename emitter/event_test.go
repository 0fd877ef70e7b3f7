package emitter

import "testing"

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, eventType string
		expected           bool
	}{
		{"order.created", "order.created", true},
		{"order.created", "order.updated", false},
		{"order.*", "order.created", true},
		{"order.*", "order.created.late", false},
		{"order.*", "order", false},
		{"*.created", "order.created", true},
		{"order.>", "order.created", true},
		{"order.>", "order.created.late", true},
		{"order.>", "order", false},
		{">", "order", true},
		{">", "order.created", true},
		{"order", "order.created", false},
		{"payment.failed", "order.created", false},
	}
	for i, tt := range tests {
		if got := MatchPattern(tt.pattern, tt.eventType); got != tt.expected {
			t.Errorf("Test %d: MatchPattern(%q, %q) = %v, expected %v", i, tt.pattern, tt.eventType, got, tt.expected)
		}
	}
}
