package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester/amqpconsume"
)

func init() {
	subcommands = append(subcommands, newSendCmd)
}

// EnvToken names the environment variable holding the bearer token send
// presents to a serve URL.
const EnvToken = "WINCHESTER_TOKEN"

type sendOptions struct {
	to         string
	exchange   string
	routingKey string
	events     bool
	oslo       bool
	batch      int
	token      string
	timeout    time.Duration
}

func newSendCmd() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send --to URL [FILE...]",
		Short: "Publish notifications or events to RabbitMQ or POST them to winchester serve",
		Long: `send reads notifications (or, with --events, flat events) from the files
given, or from standard input when there is none or the file is "-", and
delivers them to --to:

  amqp://… or amqps://…  publishes each one as a persistent JSON message to
                         --exchange with --routing-key, waiting for the
                         broker's confirmation (--oslo wraps notifications in
                         the oslo.messaging v2 envelope, as OpenStack does;
                         events are for a consumer with format: events)
  http://… or https://…  POSTs them to winchester serve, --batch per request,
                         at /v1/notifications or /v1/events (unless the URL
                         has a path of its own); the bearer token comes from
                         --token or ` + EnvToken + `

A file holds a JSON array of objects, one object, or JSON lines (one
object per line). Progress goes to standard error on a terminal; the
final count to standard output. It exits 1 when something was not
delivered (or, over HTTP, was rejected).`,
		Example: `  winchester send --to amqp://guest:guest@localhost:5672/ --exchange nova notifications.jsonl
  winchester send --to http://localhost:8080 etc/sample_notifications.json
  winchester send --to http://localhost:8080 --events < events.jsonl`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.token == "" {
				o.token = os.Getenv(EnvToken)
			}
			return runSend(cmd.Context(), &o, args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.to, "to", "", "destination: an amqp:// or amqps:// broker URL, or the http(s):// URL of winchester serve (required)")
	fs.StringVar(&o.exchange, "exchange", "nova", "AMQP: the exchange to publish to (\"\" is the default exchange)")
	fs.StringVar(&o.routingKey, "routing-key", amqpconsume.DefaultBindingKey, "AMQP: the routing key")
	fs.BoolVar(&o.events, "events", false, "the input holds flat events (POSTed to /v1/events), not notifications")
	fs.BoolVar(&o.oslo, "oslo", false, "AMQP: wrap each notification in the oslo.messaging v2 envelope")
	fs.IntVar(&o.batch, "batch", 100, "HTTP: objects per request")
	fs.StringVar(&o.token, "token", "", "HTTP: bearer token (default $"+EnvToken+")")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long one publish confirmation or request may take")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// sender delivers a batch of JSON objects and reports how many were
// delivered and how many were rejected by the receiver.
type sender interface {
	send(ctx context.Context, objs []json.RawMessage) (rejected int, err error)
	describe() string
	close() error
}

func runSend(ctx context.Context, o *sendOptions, files []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if o.batch <= 0 {
		return fmt.Errorf("--batch %d: must be positive", o.batch)
	}
	u, err := url.Parse(o.to)
	if err != nil {
		return fmt.Errorf("--to: invalid URL %q", amqpconsume.RedactURL(o.to))
	}
	var s sender
	switch u.Scheme {
	case "amqp", "amqps":
		if o.events && o.oslo {
			return errors.New("--oslo wraps notifications, not events")
		}
		s, err = newAMQPSender(o)
	case "http", "https":
		if o.oslo {
			return errors.New("--oslo applies to AMQP only: winchester serve takes plain notifications")
		}
		s, err = newHTTPSender(o, u)
	default:
		return fmt.Errorf("--to %s: want an amqp://, amqps://, http:// or https:// URL", amqpconsume.RedactURL(o.to))
	}
	if err != nil {
		return err
	}
	defer s.close()
	if len(files) == 0 {
		files = []string{"-"}
	}
	kind := "notifications"
	if o.events {
		kind = "events"
	}
	p := newProgress(stderr, kind)
	var sent, rejected int
	flush := func(batch []json.RawMessage) error {
		if len(batch) == 0 {
			return nil
		}
		r, err := s.send(ctx, batch)
		if err != nil {
			return err
		}
		sent += len(batch)
		rejected += r
		p.update(sent)
		return nil
	}
	size := o.batch
	if _, ok := s.(*amqpSender); ok {
		size = 500 // confirmations are awaited per batch
	}
	var serr error
	for _, f := range files {
		serr = readObjects(f, stdin, size, flush)
		if serr != nil {
			break
		}
	}
	p.done()
	fmt.Fprintf(stdout, "sent %d %s to %s", sent, kind, s.describe())
	if rejected > 0 {
		fmt.Fprintf(stdout, " (%d rejected)", rejected)
	}
	fmt.Fprintln(stdout)
	if serr != nil {
		return serr
	}
	if rejected > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d %s rejected", rejected, sent, kind)}
	}
	return nil
}

// readObjects reads the JSON objects of a file ("-": stdin) — a JSON
// array, one object, or JSON lines — and passes them to fn in batches of
// at most size.
func readObjects(name string, stdin io.Reader, size int, fn func([]json.RawMessage) error) error {
	var r io.Reader = stdin
	display := "standard input"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r, display = f, name
	}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	var batch []json.RawMessage
	emit := func(obj json.RawMessage, n int) error {
		if t := bytes.TrimSpace(obj); len(t) == 0 || t[0] != '{' {
			return fmt.Errorf("%s: value %d: not a JSON object", display, n)
		}
		batch = append(batch, obj)
		if len(batch) >= size {
			err := fn(batch)
			batch = nil
			return err
		}
		return nil
	}
	n := 0
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: after %d objects: invalid JSON: %v", display, n, err)
		}
		if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '[' {
			var list []json.RawMessage
			if err := json.Unmarshal(v, &list); err != nil {
				return fmt.Errorf("%s: invalid JSON array: %v", display, err)
			}
			for _, obj := range list {
				n++
				if err := emit(obj, n); err != nil {
					return err
				}
			}
			continue
		}
		n++
		if err := emit(v, n); err != nil {
			return err
		}
	}
	return fn(batch)
}

// amqpSender publishes to an exchange with publisher confirms.
type amqpSender struct {
	o      *sendOptions
	conn   *amqp.Connection
	ch     *amqp.Channel
	closed chan *amqp.Error // why the broker closed the channel
}

func newAMQPSender(o *sendOptions) (*amqpSender, error) {
	conn, err := amqp.DialConfig(o.to, amqp.Config{
		Properties: amqp.Table{"connection_name": "winchester send"},
		Dial:       amqp.DefaultDial(o.timeout),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", amqpconsume.RedactURL(o.to), err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("open a confirmed channel: %w", err)
	}
	return &amqpSender{o: o, conn: conn, ch: ch, closed: ch.NotifyClose(make(chan *amqp.Error, 1))}, nil
}

func (s *amqpSender) describe() string {
	return fmt.Sprintf("%s exchange %q routing key %q", amqpconsume.RedactURL(s.o.to), s.o.exchange, s.o.routingKey)
}

func (s *amqpSender) close() error { return s.conn.Close() }

func (s *amqpSender) send(ctx context.Context, objs []json.RawMessage) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.timeout)
	defer cancel()
	returns := s.ch.NotifyReturn(make(chan amqp.Return, len(objs)))
	dcs := make([]*amqp.DeferredConfirmation, 0, len(objs))
	for _, obj := range objs {
		body := []byte(obj)
		var head struct {
			MessageID string `json:"message_id"`
		}
		_ = json.Unmarshal(body, &head)
		if s.o.oslo {
			b, err := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(body)})
			if err != nil {
				return 0, err
			}
			body = b
		}
		dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, s.o.exchange, s.o.routingKey, true, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    head.MessageID,
			Timestamp:    time.Now(),
			Body:         body,
		})
		if err != nil {
			return 0, fmt.Errorf("publish to exchange %q: %w", s.o.exchange, err)
		}
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		ok, err := dc.WaitContext(ctx)
		if err == nil && ok {
			continue
		}
		select {
		case e := <-s.closed:
			if e != nil {
				return 0, fmt.Errorf("publish to exchange %q: %w", s.o.exchange, e)
			}
		default:
		}
		if err != nil {
			return 0, fmt.Errorf("wait for the broker's confirmation: %w", err)
		}
		return 0, fmt.Errorf("the broker refused a message (exchange %q)", s.o.exchange)
	}
	select {
	case r := <-returns:
		return 0, fmt.Errorf("exchange %q routed a message with key %q to no queue (%s): is the consumer's queue declared and bound?", s.o.exchange, s.o.routingKey, r.ReplyText)
	default:
	}
	return 0, nil
}

// httpSender POSTs batches to winchester serve.
type httpSender struct {
	o      *sendOptions
	url    string
	client *http.Client
}

func newHTTPSender(o *sendOptions, u *url.URL) (*httpSender, error) {
	if u.Path == "" || u.Path == "/" {
		u = u.JoinPath("v1", "notifications")
		if o.events {
			u = u.JoinPath("..", "events")
		}
	}
	return &httpSender{o: o, url: u.String(), client: &http.Client{Timeout: o.timeout}}, nil
}

func (s *httpSender) describe() string { return s.url }

func (s *httpSender) close() error { return nil }

func (s *httpSender) send(ctx context.Context, objs []json.RawMessage) (int, error) {
	body, err := json.Marshal(objs)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.o.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.o.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("POST %s: %s: %s", s.url, resp.Status, strings.TrimSpace(string(data)))
	}
	return countRejected(data), nil
}

// countRejected counts the results whose outcome is "rejected" in a
// response of winchester serve ({"results": [{"outcome": …}, …]} or a
// bare list of results); other responses count none.
func countRejected(data []byte) int {
	var results []struct {
		Outcome string `json:"outcome"`
	}
	var wrapped struct {
		Results *[]struct {
			Outcome string `json:"outcome"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &wrapped); err == nil && wrapped.Results != nil {
		results = *wrapped.Results
	} else if err := json.Unmarshal(data, &results); err != nil {
		return 0
	}
	n := 0
	for _, r := range results {
		if r.Outcome == "rejected" {
			n++
		}
	}
	return n
}

// progress shows a running count on a terminal.
type progress struct {
	w     io.Writer
	kind  string
	tty   bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, kind string) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, kind: kind, tty: tty}
}

func (p *progress) update(n int) {
	if !p.tty || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	fmt.Fprintf(p.w, "\rsent %d %s…", n, p.kind)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
