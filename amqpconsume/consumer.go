package amqpconsume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/sync/errgroup"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// IngestFunc stores a batch of notifications (raw JSON bodies) and returns
// one result per body, in order, once the transaction holding their events
// committed: Stored and Duplicate are final, Rejected says why the body
// cannot become an event. An error means nothing of the batch may be taken
// as stored (the database is unreachable, the transaction failed); the
// consumer retries the batch later.
type IngestFunc func(ctx context.Context, bodies [][]byte) ([]trigger.Result, error)

// IngestEventsFunc stores a batch of flat events with the same contract as
// IngestFunc (consumers whose format is events).
type IngestEventsFunc func(ctx context.Context, events []stream.Event) ([]trigger.Result, error)

// PingFunc reports whether the database is reachable. The consumer calls
// it when a batch fails, to tell an outage (wait and retry) from a message
// the database refuses (isolate it and dead-letter it).
type PingFunc func(ctx context.Context) error

// Options holds the collaborators of a Consumer besides its Config.
type Options struct {
	// Ingest stores the notifications (required).
	Ingest IngestFunc
	// IngestEvents stores flat events, for consumers with format events
	// (required by them only).
	IngestEvents IngestEventsFunc
	// Ping checks the database; nil: every batch failure is taken for an
	// outage and retried until it succeeds.
	Ping PingFunc
	// Logger receives the consumer's logs (nil: discarded).
	Logger *slog.Logger
	// Metrics receives the consumer's counters (nil: not counted).
	Metrics *Metrics
	// ShutdownGrace bounds how long the batch in flight may take to be
	// stored and acknowledged once Run's context is cancelled (default 30s).
	ShutdownGrace time.Duration
	// Retries is how often a single message the database refuses while it
	// is reachable is retried before it is dead-lettered (default 3).
	Retries int
}

// Consumer consumes one queue: it declares the topology, takes deliveries
// in batches, ingests them and acknowledges them once stored. Run it with
// Run; it is not safe to run twice at once.
type Consumer struct {
	cfg  Config
	opts Options
	log  *slog.Logger
	m    *Metrics
	tag  string
}

// New returns a consumer for cfg, which must have been validated
// (Config.Validate) and, when its URL refers to the environment, expanded
// (Config.ExpandEnv).
func New(cfg Config, opts Options) (*Consumer, error) {
	if opts.Ingest == nil {
		return nil, errors.New("amqpconsume: Options.Ingest is nil")
	}
	if cfg.BatchSize <= 0 || cfg.Prefetch < cfg.BatchSize || cfg.ReconnectDelay <= 0 {
		return nil, fmt.Errorf("amqpconsume: consumer %q: configuration not validated (call Config.Validate)", cfg.Name)
	}
	if cfg.Format == FormatEvents && opts.IngestEvents == nil {
		return nil, fmt.Errorf("amqpconsume: consumer %q: format events needs Options.IngestEvents", cfg.Name)
	}
	if strings.Contains(cfg.URL, "$") && !cfg.expanded {
		return nil, fmt.Errorf("amqpconsume: consumer %q: url holds $ references: call Config.ExpandEnv with the environment first", cfg.Name)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.Retries <= 0 {
		opts.Retries = 3
	}
	host, _ := os.Hostname()
	return &Consumer{
		cfg:  cfg,
		opts: opts,
		log:  opts.Logger.With("consumer", cfg.Name, "queue", cfg.Queue),
		m:    opts.Metrics,
		tag:  fmt.Sprintf("winchester-%s-%s-%d-%d", cfg.Name, host, os.Getpid(), rand.Uint32()),
	}, nil
}

// Run consumes until ctx is cancelled, then cancels the broker consumer,
// stores and acknowledges what it already received (within the shutdown
// grace) and closes the connection; it returns nil. When the connection
// or the channel is lost it reconnects with backoff and declares the
// topology again; it returns an error only for a configuration the broker
// refuses on the first attempt (a declaration that conflicts with an
// existing exchange or queue), which retrying cannot fix.
func (c *Consumer) Run(ctx context.Context) error {
	delay := c.cfg.ReconnectDelay.Std()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		progressed, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var aerr *amqp.Error
		if attempt == 1 && !progressed && errors.As(err, &aerr) && isConfigError(aerr) {
			return fmt.Errorf("consumer %s: %w", c.cfg.Name, err)
		}
		if progressed || time.Since(start) > c.cfg.MaxReconnectDelay.Std() {
			delay = c.cfg.ReconnectDelay.Std()
		}
		c.m.reconnect(c.cfg.Name)
		wait := jitter(delay)
		c.log.Warn("broker connection lost; reconnecting", "error", err, "in", wait.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(2*delay, c.cfg.MaxReconnectDelay.Std())
	}
}

// inFlight is the most batches being ingested at once.
const inFlight = 2

// isConfigError reports broker errors that retrying cannot fix: a
// declaration conflicting with an existing exchange or queue, access
// refused, an unknown virtual host.
func isConfigError(e *amqp.Error) bool {
	switch e.Code {
	case amqp.PreconditionFailed, amqp.AccessRefused, amqp.NotAllowed:
		return true
	}
	return false
}

// jitter returns d ± 20 %.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// session runs one connection: it returns when the connection is lost
// (with the reason) or, after a clean shutdown, when ctx is cancelled.
// progressed reports whether deliveries were consumed.
func (c *Consumer) session(ctx context.Context) (progressed bool, err error) {
	conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{
		Heartbeat:  c.cfg.Heartbeat.Std(),
		Properties: amqp.Table{"connection_name": "winchester consumer " + c.cfg.Name},
		Dial:       amqp.DefaultDial(30 * time.Second),
	})
	if err != nil {
		return false, fmt.Errorf("connect to %s: %w", RedactURL(c.cfg.URL), err)
	}
	defer conn.Close()
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))

	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	if err := declare(ch, c.cfg); err != nil {
		return false, err
	}
	var dl *deadLetterer
	if c.cfg.DeadLetterExchange != "" {
		dch, err := conn.Channel()
		if err != nil {
			return false, fmt.Errorf("open dead-letter channel: %w", err)
		}
		if err := dch.Confirm(false); err != nil {
			return false, fmt.Errorf("dead-letter channel: confirm mode: %w", err)
		}
		dl = &deadLetterer{ch: dch, cfg: c.cfg}
	}
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return false, fmt.Errorf("set prefetch %d: %w", c.cfg.Prefetch, err)
	}
	deliveries, err := ch.ConsumeWithContext(context.WithoutCancel(ctx), c.cfg.Queue, c.tag, false, false, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume queue %s: %w", c.cfg.Queue, err)
	}
	c.log.Info("consuming", "broker", RedactURL(c.cfg.URL), "prefetch", c.cfg.Prefetch, "batch_size", c.cfg.BatchSize)

	// work is the context of ingesting and acknowledging: it outlives ctx
	// by the shutdown grace, so the batch in flight can finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(c.opts.ShutdownGrace, cancelWork)
	})
	defer stopGrace()

	var (
		mu     sync.Mutex
		reason error
	)
	lost := func() error {
		mu.Lock()
		defer mu.Unlock()
		return reason
	}
	batches := make(chan []amqp.Delivery)
	g, gctx := errgroup.WithContext(work)
	g.Go(func() error { // the connection watcher
		select {
		case e := <-connClosed:
			mu.Lock()
			if e != nil {
				reason = e
			} else {
				reason = errors.New("connection closed")
			}
			mu.Unlock()
			cancelWork() // nothing can be acknowledged any more
			return nil
		case <-gctx.Done():
			return nil
		}
	})
	g.Go(func() error { // shutdown: cancel the broker consumer
		select {
		case <-ctx.Done():
			if err := ch.Cancel(c.tag, false); err != nil && lost() == nil {
				c.log.Warn("cancel consumer", "error", err)
			}
		case <-gctx.Done():
		}
		return nil
	})
	g.Go(func() error { // the collector
		defer close(batches)
		c.collect(gctx, deliveries, batches)
		return nil
	})
	// Batches are ingested up to inFlight at a time (the next one distils
	// while the previous one is written) and settled in delivery order.
	type inflight struct {
		batch   []amqp.Delivery
		poisons []poison
		err     error
		done    chan struct{}
	}
	queue := make(chan *inflight, inFlight-1)
	var preparing sync.WaitGroup
	defer preparing.Wait()
	g.Go(func() error { // the dispatcher
		defer close(queue)
		for b := range batches {
			progressed = true
			f := &inflight{batch: b, done: make(chan struct{})}
			preparing.Add(1)
			go func() {
				defer preparing.Done()
				defer close(f.done)
				f.poisons, f.err = c.prepare(work, f.batch)
			}()
			select {
			case queue <- f:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	g.Go(func() error { // the settler
		defer cancelWork() // stops the collector and the dispatcher on failure
		for f := range queue {
			<-f.done
			if f.err != nil {
				return f.err
			}
			if err := c.settle(work, f.batch, f.poisons, dl); err != nil {
				return err
			}
		}
		return nil
	})
	if c.cfg.LagInterval > 0 {
		g.Go(func() error {
			c.watchLag(gctx, conn)
			return nil
		})
	}
	err = g.Wait()
	if r := lost(); r != nil {
		return progressed, r
	}
	if err != nil {
		return progressed, err
	}
	if ctx.Err() != nil {
		c.log.Info("consumer stopped")
		return progressed, nil
	}
	return progressed, errors.New("deliveries stopped (consumer cancelled by the broker)")
}

// collect gathers deliveries into batches of at most BatchSize that wait
// at most BatchLinger after their first delivery, until deliveries is
// closed (consumer cancelled, channel lost) or ctx is done.
func (c *Consumer) collect(ctx context.Context, deliveries <-chan amqp.Delivery, batches chan<- []amqp.Delivery) {
	var (
		batch []amqp.Delivery
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	send := func() bool {
		timer.Stop()
		select {
		case batches <- batch:
			batch = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				if len(batch) > 0 {
					send()
				}
				return
			}
			c.m.delivery(c.cfg.Name, d.Redelivered)
			batch = append(batch, d)
			if len(batch) == 1 {
				timer.Reset(c.cfg.BatchLinger.Std())
			}
			if len(batch) >= c.cfg.BatchSize && !send() {
				return
			}
		case <-timer.C:
			if len(batch) > 0 && !send() {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// watchLag reads the queue's depth every LagInterval for the lag metric,
// on a channel of its own (a failed passive declaration closes it).
func (c *Consumer) watchLag(ctx context.Context, conn *amqp.Connection) {
	t := time.NewTicker(c.cfg.LagInterval.Std())
	defer t.Stop()
	for {
		ch, err := conn.Channel()
		if err == nil {
			q, err := ch.QueueDeclarePassive(c.cfg.Queue, true, false, false, false, nil)
			if err == nil {
				c.m.lag(c.cfg.Name, q.Messages)
			}
			_ = ch.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunAll runs a consumer for each configuration, all with the same
// options, until ctx is cancelled (then each finishes as Run does). The
// first consumer to fail stops the others; its error is returned.
func RunAll(ctx context.Context, cfgs []Config, opts Options) error {
	var consumers []*Consumer
	for _, cfg := range cfgs {
		c, err := New(cfg, opts)
		if err != nil {
			return err
		}
		consumers = append(consumers, c)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	return g.Wait()
}

// String describes the consumer for logs.
func (c *Consumer) String() string {
	return c.cfg.Name + " (" + c.cfg.Queue + ")"
}

// Tag returns the consumer tag the consumer registers with the broker.
func (c *Consumer) Tag() string { return c.tag }
