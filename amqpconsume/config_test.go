package amqpconsume_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/trigger"
)

func TestUnwrap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    string // the notification returned
		wantErr string // part of the error
	}{
		{name: "plain notification", body: `{"event_type": "a", "message_id": "m"}`, want: `{"event_type": "a", "message_id": "m"}`},
		{name: "oslo v2 envelope", body: `{"oslo.version": "2.0", "oslo.message": "{\"event_type\": \"a\"}"}`, want: `{"event_type": "a"}`},
		{name: "oslo key inside a value", body: `{"event_type": "a", "payload": {"note": "\"oslo.version\""}}`, want: `{"event_type": "a", "payload": {"note": "\"oslo.version\""}}`},
		{name: "not JSON", body: `hello`, wantErr: "not JSON"},
		{name: "empty", body: ``, wantErr: "not JSON"},
		{name: "a list", body: `[{"event_type": "a"}]`, wantErr: "not a JSON object but a list"},
		{name: "broken object with oslo key", body: `{"oslo.version": "2.0", `, wantErr: "not JSON"},
		{name: "oslo message garbage", body: `{"oslo.version": "2.0", "oslo.message": "{garbage"}`, wantErr: "does not hold JSON"},
		{name: "oslo message not a string", body: `{"oslo.version": "2.0", "oslo.message": {"event_type": "a"}}`, wantErr: "must be a JSON string, not an object"},
		{name: "oslo message a list", body: `{"oslo.version": "2.0", "oslo.message": "[1]"}`, wantErr: "holds a list"},
		{name: "oslo message missing", body: `{"oslo.version": "2.0"}`, wantErr: "oslo.message is missing"},
		{name: "oslo version 1", body: `{"oslo.version": "1.0", "oslo.message": "{}"}`, wantErr: `unsupported oslo.version "1.0"`},
		{name: "oslo version a number", body: `{"oslo.version": 2, "oslo.message": "{}"}`, wantErr: "must be a string, not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := amqpconsume.Unwrap([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Unwrap(%q) error = %v, want one containing %q", tc.body, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("Unwrap(%q) = %q, %v, want %q", tc.body, got, err, tc.want)
			}
		})
	}
}

func TestConfigDecodeAndValidate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RABBIT_PASSWORD": "s3cret"}
	getenv := func(k string) string { return env[k] }

	t.Run("the issue's example with defaults", func(t *testing.T) {
		t.Parallel()
		src := `
consumers:
  - name: nova
    url: amqp://guest:guest@127.0.0.1:5672/
    exchange: nova            # a topic exchange, declared if missing
    queue: winchester.nova    # declared durable if missing
    binding_keys: [notifications.info, notifications.error]
    dead_letter_exchange: winchester.dlx
`
		var doc struct {
			Consumers []amqpconsume.Config `yaml:"consumers"`
		}
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if err := amqpconsume.ValidateAll(doc.Consumers, "winchester.yaml"); err != nil {
			t.Fatalf("validate: %v", err)
		}
		c := doc.Consumers[0]
		checks := []struct {
			field string
			got   any
			want  any
		}{
			{"line", c.Line, 3},
			{"exchange_type", c.ExchangeType, "topic"},
			{"exchange_durable", *c.ExchangeDurable, true},
			{"queue_type", c.QueueType, "classic"},
			{"dead_letter_exchange_type", c.DeadLetterExchangeType, "direct"},
			{"dead_letter_queue", c.DeadLetterQueue, "winchester.nova.dead"},
			{"batch_size", c.BatchSize, amqpconsume.DefaultBatchSize},
			{"prefetch", c.Prefetch, 3 * amqpconsume.DefaultBatchSize},
			{"batch_linger", c.BatchLinger.Std(), amqpconsume.DefaultBatchLinger},
			{"binding_keys", strings.Join(c.BindingKeys, ","), "notifications.info,notifications.error"},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("%s = %v, want %v", ck.field, ck.got, ck.want)
			}
		}
	})

	tests := []struct {
		name    string
		src     string
		wantErr string
		check   func(t *testing.T, c amqpconsume.Config)
	}{
		{name: "password from the environment", src: "name: a\nurl: amqp://winchester:${RABBIT_PASSWORD}@rabbit/\nqueue: q\n",
			check: func(t *testing.T, c amqpconsume.Config) {
				if c.URL != "amqp://winchester:s3cret@rabbit/" {
					t.Errorf("url = %q", c.URL)
				}
			}},
		{name: "durations in seconds and units", src: "name: a\nurl: amqp://h/\nqueue: q\nbatch_linger: 0.25\nmax_reconnect_delay: 1m\n",
			check: func(t *testing.T, c amqpconsume.Config) {
				if c.BatchLinger.Std() != 250*time.Millisecond || c.MaxReconnectDelay.Std() != time.Minute {
					t.Errorf("batch_linger = %v, max_reconnect_delay = %v", c.BatchLinger.Std(), c.MaxReconnectDelay.Std())
				}
			}},
		{name: "no exchange: no bindings", src: "name: a\nurl: amqp://h/\nqueue: q\n",
			check: func(t *testing.T, c amqpconsume.Config) {
				if len(c.BindingKeys) != 0 {
					t.Errorf("binding_keys = %v, want none", c.BindingKeys)
				}
			}},
		{name: "exchange without keys binds notifications.info", src: "name: a\nurl: amqp://h/\nqueue: q\nexchange: nova\n",
			check: func(t *testing.T, c amqpconsume.Config) {
				if strings.Join(c.BindingKeys, ",") != "notifications.info" {
					t.Errorf("binding_keys = %v", c.BindingKeys)
				}
			}},
		{name: "unknown key", src: "name: a\nurl: amqp://h/\nqueue: q\nqueu: x\n", wantErr: `line 4: queu: unknown key (did you mean queue?)`},
		{name: "unset variable", src: "name: a\nurl: amqp://u:${NOPE}@h/\nqueue: q\n", wantErr: "url: environment variable NOPE is not set"},
		{name: "not amqp", src: "name: a\nurl: http://h/\nqueue: q\n", wantErr: "want an amqp:// or amqps:// URL"},
		{name: "dollar sign", src: "name: a\nurl: amqp://u:pa$$word@h/\nqueue: q\n",
			check: func(t *testing.T, c amqpconsume.Config) {
				if c.URL != "amqp://u:pa$word@h/" {
					t.Errorf("url = %q", c.URL)
				}
			}},
		{name: "missing name and queue", src: "url: amqp://h/\n", wantErr: "name: missing"},
		{name: "missing queue", src: "name: a\nurl: amqp://h/\n", wantErr: "consumer a: queue: missing"},
		{name: "bad queue type", src: "name: a\nurl: amqp://h/\nqueue: q\nqueue_type: stream\n", wantErr: `queue_type: want classic or quorum, got "stream"`},
		{name: "prefetch below batch", src: "name: a\nurl: amqp://h/\nqueue: q\nbatch_size: 100\nprefetch: 10\n", wantErr: "prefetch: must be at least batch_size (100)"},
		{name: "keys without exchange", src: "name: a\nurl: amqp://h/\nqueue: q\nbinding_keys: [x]\n", wantErr: "binding_keys: set, but no exchange"},
		{name: "dead queue without exchange", src: "name: a\nurl: amqp://h/\nqueue: q\ndead_letter_queue: d\n", wantErr: "no dead_letter_exchange"},
		{name: "bad duration", src: "name: a\nurl: amqp://h/\nqueue: q\nbatch_linger: soon\n", wantErr: `invalid duration "soon"`},
		{name: "wrong type", src: "name: a\nurl: amqp://h/\nqueue: q\nbatch_size: many\n", wantErr: `line 4: batch_size: must be an integer, not the string "many"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c amqpconsume.Config
			err := yaml.Unmarshal([]byte(tc.src), &c)
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				err = c.ExpandEnv(getenv)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tc.check(t, c)
		})
	}

	t.Run("duplicate names", func(t *testing.T) {
		t.Parallel()
		cs := []amqpconsume.Config{{Name: "a", URL: "amqp://h/", Queue: "q1"}, {Name: "a", URL: "amqp://h/", Queue: "q2"}}
		err := amqpconsume.ValidateAll(cs, "")
		if err == nil || !strings.Contains(err.Error(), "already used by consumer 1") {
			t.Fatalf("ValidateAll = %v, want a duplicate name error", err)
		}
	})
}

// TestNewRefusesUnexpandedURL: a consumer whose URL still refers to the
// environment cannot be built by mistake (it would log in with the
// literal "${…}").
func TestNewRefusesUnexpandedURL(t *testing.T) {
	t.Parallel()
	c := amqpconsume.Config{Name: "a", URL: "amqp://u:${PW}@h/", Queue: "q"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	noop := amqpconsume.Options{Ingest: func(context.Context, [][]byte) ([]trigger.Result, error) { return nil, nil }}
	if _, err := amqpconsume.New(c, noop); err == nil || !strings.Contains(err.Error(), "call Config.ExpandEnv") {
		t.Fatalf("New = %v, want an error asking for ExpandEnv", err)
	}
	if err := c.ExpandEnv(func(string) string { return "pw" }); err != nil {
		t.Fatal(err)
	}
	if _, err := amqpconsume.New(c, noop); err != nil {
		t.Fatalf("New after ExpandEnv: %v", err)
	}
}
