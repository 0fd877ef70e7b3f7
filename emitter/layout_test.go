package emitter

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

func TestNewLayoutNames(t *testing.T) {
	tests := []struct {
		prefix         string
		eventsStream   string
		attemptsStream string
		deadStream     string
		countersStream string
		stateBucket    string
		subject        string
		direct         string
		attempt        string
		dead           string
		delivered      string
	}{
		{
			prefix:         "",
			eventsStream:   "WEBHOOKS_EVENTS",
			attemptsStream: "WEBHOOKS_ATTEMPTS",
			deadStream:     "WEBHOOKS_DEAD",
			countersStream: "WEBHOOKS_COUNTERS",
			stateBucket:    "WEBHOOKS_STATE",
			subject:        "webhooks.events.order.created",
			direct:         "webhooks.direct.orders.order.created",
			attempt:        "webhooks.attempts.orders.01KBQX7",
			dead:           "webhooks.dead.orders",
			delivered:      "webhooks.counters.delivered.order.created",
		},
		{
			prefix:         "acme",
			eventsStream:   "ACME_WEBHOOKS_EVENTS",
			attemptsStream: "ACME_WEBHOOKS_ATTEMPTS",
			deadStream:     "ACME_WEBHOOKS_DEAD",
			countersStream: "ACME_WEBHOOKS_COUNTERS",
			stateBucket:    "ACME_WEBHOOKS_STATE",
			subject:        "acme.webhooks.events.order.created",
			direct:         "acme.webhooks.direct.orders.order.created",
			attempt:        "acme.webhooks.attempts.orders.01KBQX7",
			dead:           "acme.webhooks.dead.orders",
			delivered:      "acme.webhooks.counters.delivered.order.created",
		},
		{
			prefix:         "Acme.prod-eu",
			eventsStream:   "ACME_PROD_EU_WEBHOOKS_EVENTS",
			attemptsStream: "ACME_PROD_EU_WEBHOOKS_ATTEMPTS",
			deadStream:     "ACME_PROD_EU_WEBHOOKS_DEAD",
			countersStream: "ACME_PROD_EU_WEBHOOKS_COUNTERS",
			stateBucket:    "ACME_PROD_EU_WEBHOOKS_STATE",
			subject:        "Acme.prod-eu.webhooks.events.order.created",
			direct:         "Acme.prod-eu.webhooks.direct.orders.order.created",
			attempt:        "Acme.prod-eu.webhooks.attempts.orders.01KBQX7",
			dead:           "Acme.prod-eu.webhooks.dead.orders",
			delivered:      "Acme.prod-eu.webhooks.counters.delivered.order.created",
		},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix %q", tt.prefix), func(t *testing.T) {
			l, err := NewLayout(tt.prefix)
			if err != nil {
				t.Fatalf("NewLayout: %v", err)
			}
			check := func(what, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("Prefix", l.Prefix(), tt.prefix)
			check("EventsStream", l.EventsStream(), tt.eventsStream)
			check("AttemptsStream", l.AttemptsStream(), tt.attemptsStream)
			check("DeadStream", l.DeadStream(), tt.deadStream)
			check("CountersStream", l.CountersStream(), tt.countersStream)
			check("StateBucket", l.StateBucket(), tt.stateBucket)
			check("Subject", l.Subject("order.created"), tt.subject)
			check("DirectSubject", l.DirectSubject("orders", "order.created"), tt.direct)
			check("AttemptSubject", l.AttemptSubject("orders", "01KBQX7Z3M4N5P6Q7R8S9T0V1W"), tt.attempt)
			check("DestinationAttemptsSubject", l.DestinationAttemptsSubject("orders"), strings.TrimSuffix(tt.attempt, "01KBQX7")+"*")
			check("DeadSubject", l.DeadSubject("orders"), tt.dead)
			check("DeliveredCounterSubject", l.DeliveredCounterSubject("order.created"), tt.delivered)
		})
	}
}

func TestNewLayoutEmptyIsZero(t *testing.T) {
	l, err := NewLayout("")
	if err != nil {
		t.Fatalf("NewLayout: %v", err)
	}
	if l != (Layout{}) {
		t.Errorf("NewLayout(\"\") = %+v, want the zero Layout", l)
	}
	acme, err := NewLayout("acme")
	if err != nil {
		t.Fatalf("NewLayout: %v", err)
	}
	again, _ := NewLayout("acme")
	if acme != again {
		t.Errorf("two layouts of prefix acme differ: %+v and %+v", acme, again)
	}
	if acme == l {
		t.Errorf("layout of prefix acme equals the default layout")
	}
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		prefix  string
		wantErr string
	}{
		{prefix: ""},
		{prefix: "acme"},
		{prefix: "acme.prod"},
		{prefix: "Team_1.eu-west"},
		{prefix: strings.Repeat("a", MaxPrefixLength)},
		{prefix: strings.Repeat("a", MaxPrefixLength+1), wantErr: "33 characters, more than the maximum of 32"},
		{prefix: "acme.", wantErr: `invalid prefix "acme.": empty token`},
		{prefix: ".acme", wantErr: "empty token"},
		{prefix: "acme..prod", wantErr: "empty token"},
		{prefix: "acme prod", wantErr: `character ' ' is not allowed`},
		{prefix: "acme.*", wantErr: `character '*' is not allowed`},
		{prefix: "acme.>", wantErr: `character '>' is not allowed`},
		{prefix: "$acme", wantErr: `character '$' is not allowed`},
		{prefix: "äcme", wantErr: `character 'ä' is not allowed`},
		{prefix: "webhooks", wantErr: `invalid prefix "webhooks": it starts with "webhooks"`},
		{prefix: "webhooks.events", wantErr: "start it with another token"},
		{prefix: "WEBHOOKS"},
		{prefix: "acme.webhooks"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			err := ValidatePrefix(tt.prefix)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidatePrefix: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("ValidatePrefix accepted %q, want an error containing %q", tt.prefix, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("ValidatePrefix error %q does not contain %q", err, tt.wantErr)
			}
			if _, layoutErr := NewLayout(tt.prefix); (layoutErr == nil) != (err == nil) {
				t.Errorf("NewLayout error %v disagrees with ValidatePrefix error %v", layoutErr, err)
			}
		})
	}
}

func TestLayoutEventType(t *testing.T) {
	acme, err := NewLayout("acme")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		layout          Layout
		subject         string
		wantType        string
		wantDestination string
		wantDirect      bool
	}{
		{name: "default event", subject: "webhooks.events.order.created", wantType: "order.created"},
		{name: "default direct", subject: "webhooks.direct.orders.order.created", wantType: "order.created", wantDestination: "orders", wantDirect: true},
		{name: "prefixed event", layout: acme, subject: "acme.webhooks.events.order.created", wantType: "order.created"},
		{name: "prefixed direct", layout: acme, subject: "acme.webhooks.direct.orders.order.created", wantType: "order.created", wantDestination: "orders", wantDirect: true},
		{name: "default subject in prefixed layout", layout: acme, subject: "webhooks.events.order.created"},
		{name: "prefixed subject in default layout", subject: "acme.webhooks.events.order.created"},
		{name: "attempt subject", subject: "webhooks.attempts.orders.01KBQX7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.layout.EventType(tt.subject); got != tt.wantType {
				t.Errorf("EventType(%q) = %q, want %q", tt.subject, got, tt.wantType)
			}
			destination, direct := tt.layout.DirectDestination(tt.subject)
			if direct != tt.wantDirect {
				t.Errorf("DirectDestination(%q) reports direct = %t, want %t", tt.subject, direct, tt.wantDirect)
			}
			if destination != tt.wantDestination {
				t.Errorf("DirectDestination(%q) = %q, want %q", tt.subject, destination, tt.wantDestination)
			}
		})
	}
}

func TestPublisherUsesPrefixedLayout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Prefix = "acme"
	b := acquire(t, cfg, nil, Hooks{})
	ensureStreams(t, b)

	if err := b.Publisher().Enqueue(testEvent("01PREFIXED")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := b.JetStream().Stream(ctx, "ACME_WEBHOOKS_EVENTS")
	if err != nil {
		t.Fatalf("looking up the prefixed events stream: %v", err)
	}
	var msg *jetstream.RawStreamMsg
	waitFor(t, 10*time.Second, func() error {
		msg, err = stream.GetLastMsgForSubject(ctx, "acme.webhooks.events.>")
		return err
	})
	if msg.Header.Get(jetstream.MsgIDHeader) != "01PREFIXED" {
		t.Errorf("stored message id = %q, want 01PREFIXED", msg.Header.Get(jetstream.MsgIDHeader))
	}
	if msg.Subject != "acme.webhooks.events.order.created" {
		t.Errorf("stored subject = %q, want acme.webhooks.events.order.created", msg.Subject)
	}
	for _, name := range []string{EventsStream, AttemptsStream, DeadStream, CountersStream, "KV_" + StateBucket} {
		if _, err := b.JetStream().Stream(ctx, name); err == nil {
			t.Errorf("stream %s of the unprefixed layout exists", name)
		}
	}
	if _, err := b.JetStream().KeyValue(ctx, "ACME_WEBHOOKS_STATE"); err != nil {
		t.Errorf("opening the prefixed state bucket: %v", err)
	}
}

func TestAcquireRejectsOtherPrefixOnStore(t *testing.T) {
	cfg := testConfig(t)
	first := acquire(t, cfg, nil, Hooks{})
	ensureStreams(t, first)

	other := *cfg
	other.Prefix = "acme"
	b, err := Acquire(&other, nil, Hooks{})
	if err == nil {
		_ = b.Release()
		t.Fatal("Acquire accepted prefix acme on a store whose server runs without a prefix")
	}
	for _, want := range []string{`prefix "acme"`, "restart Caddy", "store_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	// The rejected Acquire must not take a use of the running broker away,
	// so one Release still leaves it running and a second stops it.
	same := acquire(t, cfg, nil, Hooks{})
	if same != first {
		t.Fatal("Acquire with the running prefix returned another broker")
	}
	if err := same.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := first.Publisher().Enqueue(testEvent("01AFTERREJECT")); err != nil {
		t.Fatalf("Enqueue after the rejected Acquire: %v", err)
	}
	waitForMessages(t, first.JetStream(), 1)
}

func TestEnsureStreamsKeepsLayoutsApart(t *testing.T) {
	b := acquire(t, testConfig(t), nil, Hooks{})
	js := b.JetStream()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	acme, err := NewLayout("acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []Layout{{}, acme} {
		if err := EnsureStreams(ctx, js, l, StreamOptions{}); err != nil {
			t.Fatalf("EnsureStreams with prefix %q: %v", l.Prefix(), err)
		}
	}
	// Running it again updates the streams in place.
	if err := EnsureStreams(ctx, js, acme, StreamOptions{}); err != nil {
		t.Fatalf("EnsureStreams with prefix acme again: %v", err)
	}

	// "ACME" maps to the stream names of "acme" but has other subjects.
	upper, err := NewLayout("ACME")
	if err != nil {
		t.Fatal(err)
	}
	err = EnsureStreams(ctx, js, upper, StreamOptions{})
	if err == nil {
		t.Fatal("EnsureStreams with prefix ACME took over the streams of prefix acme")
	}
	for _, want := range []string{"ACME_WEBHOOKS_EVENTS", `"acme.webhooks.events.>"`, `prefix "ACME"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	stream, err := js.Stream(ctx, "ACME_WEBHOOKS_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	subjects := stream.CachedInfo().Config.Subjects
	if !slices.Equal(subjects, []string{"acme.webhooks.events.>", "acme.webhooks.direct.>"}) {
		t.Errorf("events stream of prefix acme has subjects %q after the rejected update", subjects)
	}
}

func TestExternalBrokersPerPrefix(t *testing.T) {
	s := runNATSServer(t, t.TempDir(), 0)
	url := fmt.Sprintf("nats://127.0.0.1:%d", serverPort(t, s))
	config := func(prefix string) *Config {
		cfg := &Config{
			URLs:         []string{url},
			User:         "caddy",
			Password:     "s3cret-pass",
			Prefix:       prefix,
			StartTimeout: caddy.Duration(10 * time.Second),
			DrainTimeout: caddy.Duration(5 * time.Second),
		}
		if err := cfg.Provision(); err != nil {
			t.Fatalf("Provision: %v", err)
		}
		return cfg
	}
	plain := acquire(t, config(""), nil, Hooks{})
	acme := acquire(t, config("acme"), nil, Hooks{})
	if plain == acme {
		t.Fatal("configs with prefixes \"\" and acme share one broker")
	}
	ensureStreams(t, plain)
	ensureStreams(t, acme)

	if err := plain.Publisher().Enqueue(testEvent("01PLAIN")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if err := acme.Publisher().Enqueue(testEvent("01ACME")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}

	counts := map[string]string{"WEBHOOKS_EVENTS": "01PLAIN", "ACME_WEBHOOKS_EVENTS": "01ACME"}
	for name, wantID := range counts {
		waitFor(t, 10*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stream, err := plain.JetStream().Stream(ctx, name)
			if err != nil {
				return err
			}
			if n := stream.CachedInfo().State.Msgs; n != 1 {
				return fmt.Errorf("stream %s holds %d messages, want 1", name, n)
			}
			msg, err := stream.GetMsg(ctx, stream.CachedInfo().State.FirstSeq)
			if err != nil {
				return err
			}
			if id := msg.Header.Get(jetstream.MsgIDHeader); id != wantID {
				return fmt.Errorf("stream %s holds event %s, want %s", name, id, wantID)
			}
			return nil
		})
	}
}

func TestAttemptBucket(t *testing.T) {
	at := func(ms uint64) string { return ulid.MustNew(ms, rand.Reader).String() }
	start := uint64(1_796_000_000_000) &^ (1<<15 - 1) // the first millisecond of a bucket

	first, last := at(start), at(start+1<<15-1)
	if AttemptBucket(first) != AttemptBucket(last) {
		t.Errorf("events 32.767s apart in one bucket got %q and %q", AttemptBucket(first), AttemptBucket(last))
	}
	if got := AttemptBucket(first); got != first[:7] {
		t.Errorf("AttemptBucket(%q) = %q, want the first seven characters", first, got)
	}
	if next := at(start + 1<<15); AttemptBucket(next) == AttemptBucket(first) {
		t.Errorf("an event of the next bucket shares bucket %q", AttemptBucket(next))
	}

	for _, id := range []string{"test-1", strings.ToLower(first), first + "0", "8" + first[1:], "01KBQX7Z3M4N5P6Q7R8S9T0V1U"} {
		bucket := AttemptBucket(id)
		if len(bucket) != 3 || bucket[0] != 'h' {
			t.Errorf("AttemptBucket(%q) = %q, want a hash bucket h00 to hff", id, bucket)
		}
		if again := AttemptBucket(id); again != bucket {
			t.Errorf("AttemptBucket(%q) = %q, then %q", id, bucket, again)
		}
	}
}
