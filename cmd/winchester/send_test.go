package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

const sendBrokerURL = "amqp://guest:guest@127.0.0.1:5672/"

// sendQueue declares a queue bound to amq.topic with a unique routing key
// and returns the key and a channel to read it; both go away with the test.
func sendQueue(t *testing.T) (string, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial(sendBrokerURL)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("RabbitMQ: %v", err)
		}
		t.Skipf("RabbitMQ not reachable: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	key := "test.send." + hex.EncodeToString(b[:])
	if _, err := ch.QueueDeclare(key, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(key, key, "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(key, false, false, false)
		_ = conn.Close()
	})
	return key, ch
}

func TestSendPublishes(t *testing.T) {
	t.Parallel()
	key, ch := sendQueue(t)
	dir := writeFiles(t, map[string]string{
		"list.json":   `[{"message_id": "a", "event_type": "x"}, {"message_id": "b", "event_type": "x"}]`,
		"lines.jsonl": "{\"message_id\": \"c\", \"event_type\": \"x\"}\n{\"message_id\": \"d\", \"event_type\": \"x\"}\n",
	})
	var out, errOut bytes.Buffer
	o := &sendOptions{to: sendBrokerURL, exchange: "amq.topic", routingKey: key, oslo: true, batch: 100, timeout: 30e9}
	err := runSend(context.Background(), o, []string{filepath.Join(dir, "list.json"), filepath.Join(dir, "lines.jsonl")},
		strings.NewReader(`{"message_id": "e", "event_type": "x"}`), &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if !strings.HasPrefix(out.String(), "sent 4 notifications to amqp://guest:xxxxx@") {
		t.Errorf("output = %q, want the count of 4 with the password hidden", out.String())
	}
	var ids []string
	for {
		d, ok, err := ch.Get(key, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		var env map[string]string
		if err := json.Unmarshal(d.Body, &env); err != nil || env["oslo.version"] != "2.0" {
			t.Fatalf("body %s: not an oslo envelope", d.Body)
		}
		var n struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal([]byte(env["oslo.message"]), &n); err != nil {
			t.Fatalf("oslo.message %q: %v", env["oslo.message"], err)
		}
		if d.MessageId != n.MessageID || d.DeliveryMode != amqp.Persistent {
			t.Errorf("message %s: message id property %q, delivery mode %d", n.MessageID, d.MessageId, d.DeliveryMode)
		}
		ids = append(ids, n.MessageID)
	}
	if got := strings.Join(ids, ","); got != "a,b,c,d" {
		t.Errorf("published %s, want a,b,c,d in order", got)
	}

	// Standard input when no file is named.
	out.Reset()
	o.oslo = false
	if err := runSend(context.Background(), o, nil, strings.NewReader(`{"message_id": "e"} {"message_id": "f"}`), &out, &errOut); err != nil {
		t.Fatalf("send from stdin: %v", err)
	}
	if !strings.HasPrefix(out.String(), "sent 2 notifications") {
		t.Errorf("output = %q, want sent 2", out.String())
	}
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	key, _ := sendQueue(t)
	dir := writeFiles(t, map[string]string{"bad.jsonl": "{\"message_id\": \"a\"}\n{oops\n", "scalar.json": "[1]"})
	tests := []struct {
		name    string
		o       sendOptions
		files   []string
		wantErr string
		wantOut string
	}{
		{name: "unroutable", o: sendOptions{to: sendBrokerURL, exchange: "amq.topic", routingKey: key + ".nobody"}, files: []string{"-"},
			wantErr: "routed a message with key", wantOut: "sent 0"},
		{name: "invalid JSON after one object", o: sendOptions{to: sendBrokerURL, exchange: "amq.topic", routingKey: key}, files: []string{filepath.Join(dir, "bad.jsonl")},
			wantErr: "after 1 objects: invalid JSON"},
		{name: "not an object", o: sendOptions{to: sendBrokerURL, exchange: "amq.topic", routingKey: key}, files: []string{filepath.Join(dir, "scalar.json")},
			wantErr: "value 1: not a JSON object"},
		{name: "missing file", o: sendOptions{to: sendBrokerURL, exchange: "amq.topic", routingKey: key}, files: []string{filepath.Join(dir, "nope.json")},
			wantErr: "no such file"},
		{name: "unknown exchange", o: sendOptions{to: sendBrokerURL, exchange: "test.send.no-such-exchange", routingKey: key}, files: []string{"-"},
			wantErr: "NOT_FOUND"},
		{name: "bad scheme", o: sendOptions{to: "ftp://host/"}, wantErr: "want an amqp://, amqps://, http:// or https:// URL"},
		{name: "oslo over http", o: sendOptions{to: "http://127.0.0.1:1/", oslo: true}, wantErr: "--oslo applies to AMQP only"},
		{name: "broker down", o: sendOptions{to: "amqp://guest:guest@127.0.0.1:1/"}, wantErr: "connect to amqp://guest:xxxxx@127.0.0.1:1/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.o.batch, tc.o.timeout = 10, 10e9
			var out, errOut bytes.Buffer
			err := runSend(context.Background(), &tc.o, tc.files, strings.NewReader(`{"message_id": "x"}`), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("send error = %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output = %q, want it to contain %q", out.String(), tc.wantOut)
			}
		})
	}
}
