package amqp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
)

// TestServeConsumesAndSendDelivers runs winchester serve with a consumer
// whose password comes from the environment, feeds it with winchester send
// over AMQP (oslo envelopes) and over HTTP, and checks that everything is
// stored, that /metrics shows the consumer, and that SIGTERM stops it
// cleanly.
func TestServeConsumesAndSendDelivers(t *testing.T) {
	conn, err := amqp.Dial(brokerURL)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("RabbitMQ: %v", err)
		}
		t.Skipf("RabbitMQ not reachable: %v", err)
	}
	defer conn.Close()
	dbURL := dbtest.PostgresURL(t)
	store, err := postgres.Open(context.Background(), dbURL, db.Options{Migrate: true})
	must(t, err)
	_ = store.Close()
	bin := buildWinchester(t)

	suffix := randomSuffix()
	exchange, queue := "test.serve."+suffix, "test.serve.winchester."+suffix
	t.Cleanup(func() {
		c, err := amqp.Dial(brokerURL)
		if err != nil {
			return
		}
		defer c.Close()
		if ch, err := c.Channel(); err == nil {
			_, _ = ch.QueueDelete(queue, false, false, false)
			_, _ = ch.QueueDelete(queue+".dead", false, false, false)
			_ = ch.ExchangeDelete(exchange, false, false)
			_ = ch.ExchangeDelete(exchange+".dlx", false, false)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	_ = ln.Close()

	dir := t.TempDir()
	etc, _ := filepath.Abs("../../etc")
	cfgFile := filepath.Join(dir, "winchester.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`config_path: [%q]
database:
  url: %q
distiller_config: event_definitions.yaml
trigger_definitions: triggers.yaml
pipeline_config: pipelines.yaml
consumers:
  - name: serve-test
    url: %s
    exchange: %s
    queue: %s
    dead_letter_exchange: %s.dlx
`, etc, dbURL, withEnvPassword(t, brokerURL), exchange, queue, exchange))

	cmd := exec.Command(bin, "serve", "-c", cfgFile, "--listen", addr, "--no-workers")
	cmd.Env = append(os.Environ(), "E2E_BROKER_PASSWORD="+brokerPassword)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	count := func() int {
		var n int
		query(t, dbURL, `SELECT count(*) FROM event`, func(r pgx.Rows) error { return r.Scan(&n) })
		return n
	}
	waitFor(t, time.Minute, "serve's consumer bound to the exchange", func() bool {
		c, err := amqp.Dial(brokerURL)
		if err != nil {
			return false
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return false
		}
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err == nil && q.Consumers > 0
	})

	bodies := notifications(t, 30)
	file := filepath.Join(dir, "n.jsonl")
	var lines []string
	for _, b := range bodies[:20] {
		lines = append(lines, string(b))
	}
	writeFile(t, file, strings.Join(lines, "\n")+"\n")
	send := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, append([]string{"send"}, args...)...)
		c.Stdin = strings.NewReader(strings.Join(func() []string {
			var s []string
			for _, b := range bodies[20:] {
				s = append(s, string(b))
			}
			return s
		}(), "\n"))
		o, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("winchester send %s: %v\n%s", strings.Join(args, " "), err, o)
		}
		return string(o)
	}
	if got := send("--to", brokerURL, "--exchange", exchange, "--oslo", file); !strings.Contains(got, "sent 20 notifications") {
		t.Errorf("send over AMQP printed %q, want sent 20", got)
	}
	waitFor(t, time.Minute, "20 events stored by the consumer", func() bool { return count() >= 20 })
	if got := send("--to", "http://"+addr, "--batch", "4"); !strings.Contains(got, "sent 10 notifications to http://"+addr+"/v1/notifications") {
		t.Errorf("send over HTTP printed %q, want sent 10", got)
	}
	if n := count(); n != 30 {
		t.Errorf("stored %d events, want 30", n)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`winchester_amqp_acks_total{consumer="serve-test"} 20`, `winchester_amqp_ingested_total{consumer="serve-test",outcome="stored"} 20`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve did not stop after SIGTERM:\n%s", out.String())
	}
}
