package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// Defaults of the notabene params.
const (
	DefaultNotabeneExchangeType = "topic"
	DefaultNotabeneHost         = "localhost"
	DefaultNotabenePort         = 5672
	DefaultNotabeneUser         = "guest"
	DefaultNotabenePassword     = "guest"
	DefaultNotabeneVhost        = "/"
	DefaultNotabeneLibrary      = "librabbitmq"
	// DefaultNotabeneConnectTimeout bounds connecting to the broker.
	DefaultNotabeneConnectTimeout = 30 * time.Second
)

// NotabeneConfig is the decoded configuration of one notabene entry.
type NotabeneConfig struct {
	// QueueName is the queue declared and bound to the exchange, and the
	// routing key of every message (required to build a handler).
	QueueName string `yaml:"queue_name"`
	// EnvKeys name the env entries holding the notifications to publish.
	EnvKeys []string `yaml:"env_keys"`
	// Exchange is the exchange published to (required).
	Exchange string `yaml:"exchange"`
	// ExchangeType is the exchange's type (default topic).
	ExchangeType string `yaml:"exchange_type"`
	// Host, Port, User, Password and Vhost locate the broker (defaults
	// localhost, 5672, guest, guest, /).
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Vhost    string `yaml:"vhost"`
	// Library is accepted for compatibility with the original configuration
	// and ignored: the AMQP 0-9-1 client is always used.
	Library string `yaml:"library"`
}

// DecodeNotabeneParams decodes the params of a notabene entry and applies
// the defaults. Only exchange is required here; building a handler also
// needs queue_name.
func DecodeNotabeneParams(p pipeline.Params) (NotabeneConfig, error) {
	var c NotabeneConfig
	if err := p.Decode(&c); err != nil {
		return c, err
	}
	if c.Exchange == "" {
		return c, p.Errorf("exchange", "No 'exchange' name provided")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.ExchangeType, DefaultNotabeneExchangeType)
	def(&c.Host, DefaultNotabeneHost)
	def(&c.User, DefaultNotabeneUser)
	def(&c.Password, DefaultNotabenePassword)
	def(&c.Vhost, DefaultNotabeneVhost)
	def(&c.Library, DefaultNotabeneLibrary)
	if c.Port == 0 {
		c.Port = DefaultNotabenePort
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, p.Errorf("port", "out of range: %d", c.Port)
	}
	return c, nil
}

// NotabeneFactory makes "notabene" handlers. It owns a cache of broker
// connections, one per (host, port, user, password, vhost), shared by the
// handlers it builds and closed by Close. It is safe for concurrent use.
type NotabeneFactory struct {
	connectTimeout time.Duration
	mu             sync.Mutex
	conns          map[notabeneConnKey]*notabeneConn
	closed         bool
}

// NotabeneFactoryConfig configures a NotabeneFactory.
type NotabeneFactoryConfig struct {
	// ConnectTimeout bounds connecting to a broker (default
	// DefaultNotabeneConnectTimeout).
	ConnectTimeout time.Duration
}

type notabeneConnKey struct {
	host           string
	port           int
	user, password string
	vhost          string
}

// notabeneConn is one cached connection and the exchanges declared on it.
type notabeneConn struct {
	conn     *amqp.Connection
	declared map[string]bool // exchange/type/queue already declared
}

// NewNotabeneFactory returns a factory with an empty connection cache.
func NewNotabeneFactory(cfg NotabeneFactoryConfig) *NotabeneFactory {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultNotabeneConnectTimeout
	}
	return &NotabeneFactory{connectTimeout: cfg.ConnectTimeout, conns: map[notabeneConnKey]*notabeneConn{}}
}

// New is the factory function of the "notabene" handler.
func (f *NotabeneFactory) New(p pipeline.Params) (pipeline.Builder, error) {
	cfg, err := DecodeNotabeneParams(p)
	if err != nil {
		return nil, err
	}
	if cfg.QueueName == "" {
		return nil, p.Errorf("queue_name", "No 'queue_name' provided")
	}
	return func() (pipeline.Handler, error) { return &Notabene{f: f, cfg: cfg, log: discard}, nil }, nil
}

// Close closes the cached connections. Handlers built afterwards fail to
// commit.
func (f *NotabeneFactory) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	var errs []error
	for k, c := range f.conns {
		if !c.conn.IsClosed() {
			if err := c.conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
				errs = append(errs, fmt.Errorf("close connection to %s:%d: %w", k.host, k.port, err))
			}
		}
		delete(f.conns, k)
	}
	return errors.Join(errs...)
}

// channel returns a channel in confirm mode on the cached connection of the
// config (reconnecting when it was closed), with the exchange, queue and
// binding declared.
func (f *NotabeneFactory) channel(cfg NotabeneConfig) (*amqp.Channel, error) {
	key := notabeneConnKey{host: cfg.Host, port: cfg.Port, user: cfg.User, password: cfg.Password, vhost: cfg.Vhost}
	c, err := f.conn(key)
	if err != nil {
		return nil, err
	}
	ch, err := c.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	decl := cfg.Exchange + "\x00" + cfg.ExchangeType + "\x00" + cfg.QueueName
	f.mu.Lock()
	declared := c.declared[decl]
	f.mu.Unlock()
	if !declared {
		if err := ch.ExchangeDeclare(cfg.Exchange, cfg.ExchangeType, true, false, false, false, nil); err != nil {
			_ = ch.Close()
			return nil, fmt.Errorf("declare exchange %q (%s): %w", cfg.Exchange, cfg.ExchangeType, err)
		}
		if _, err := ch.QueueDeclare(cfg.QueueName, true, false, false, false, nil); err != nil {
			_ = ch.Close()
			return nil, fmt.Errorf("declare queue %q: %w", cfg.QueueName, err)
		}
		if err := ch.QueueBind(cfg.QueueName, cfg.QueueName, cfg.Exchange, false, nil); err != nil {
			_ = ch.Close()
			return nil, fmt.Errorf("bind queue %q to exchange %q: %w", cfg.QueueName, cfg.Exchange, err)
		}
		f.mu.Lock()
		c.declared[decl] = true
		f.mu.Unlock()
	}
	return ch, nil
}

// conn returns the open cached connection for key, dialing (without
// holding the lock, so other brokers stay usable) when there is none.
func (f *NotabeneFactory) conn(key notabeneConnKey) (*notabeneConn, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, errors.New("notabene: handler factory closed")
	}
	if c := f.conns[key]; c != nil && !c.conn.IsClosed() {
		f.mu.Unlock()
		return c, nil
	}
	f.mu.Unlock()

	uri := amqp.URI{Scheme: "amqp", Host: key.host, Port: key.port, Username: key.user, Password: key.password, Vhost: key.vhost}
	conn, err := amqp.DialConfig(uri.String(), amqp.Config{
		Vhost:      key.vhost,
		Dial:       amqp.DefaultDial(f.connectTimeout),
		Properties: amqp.Table{"product": "winchester", "connection_name": "winchester notabene"},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to amqp://%s:%d%s as %s: %w", key.host, key.port, key.vhost, key.user, err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		_ = conn.Close()
		return nil, errors.New("notabene: handler factory closed")
	}
	if c := f.conns[key]; c != nil && !c.conn.IsClosed() {
		_ = conn.Close() // another commit connected meanwhile
		return c, nil
	}
	c := &notabeneConn{conn: conn, declared: map[string]bool{}}
	f.conns[key] = c
	return c, nil
}

// Notabene is the "notabene" handler: it publishes notifications that
// earlier handlers left in the env (under env_keys) to a RabbitMQ exchange,
// with routing key queue_name. HandleEvents collects them and returns the
// events unchanged; Commit publishes each one as JSON (persistent, waiting
// for the broker's confirm). A failed message is logged and the next one is
// tried; Commit returns an error naming every failure.
//
// An env value may be a []map[string]any, a []any of maps, or one
// map[string]any.
type Notabene struct {
	f       *NotabeneFactory
	cfg     NotabeneConfig
	log     *slog.Logger
	pending []map[string]any
}

// Config returns the handler's configuration.
func (n *Notabene) Config() NotabeneConfig { return n.cfg }

// HandleEvents collects the notifications to publish.
func (n *Notabene) HandleEvents(_ context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	n.log = env.Log().With("handler", "notabene")
	n.pending = nil
	for _, k := range n.cfg.EnvKeys {
		v, ok := env.Get(k)
		if !ok || v == nil {
			continue
		}
		switch v := v.(type) {
		case []map[string]any:
			n.pending = append(n.pending, v...)
		case map[string]any:
			n.pending = append(n.pending, v)
		case []any:
			for i, x := range v {
				m, ok := x.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("notabene: env[%q][%d] is a %T, not a notification map", k, i, x)
				}
				n.pending = append(n.pending, m)
			}
		default:
			return nil, fmt.Errorf("notabene: env[%q] is a %T, not a list of notifications", k, v)
		}
	}
	return events, nil
}

// Commit publishes the collected notifications.
func (n *Notabene) Commit(ctx context.Context) error {
	if len(n.pending) == 0 {
		return nil
	}
	pending := n.pending
	n.pending = nil
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	var errs []error
	for _, msg := range pending {
		body, err := json.Marshal(msg)
		if err != nil {
			n.log.ErrorContext(ctx, "notabene: cannot encode notification", "event_type", msg["event_type"], "error", err)
			errs = append(errs, fmt.Errorf("encode notification: %w", err))
			continue
		}
		// One retry on a fresh channel (and connection, if it was
		// closed): the cached connection may have died since last use.
		for try := 1; ; try++ {
			if ch == nil || ch.IsClosed() {
				if ch, err = n.f.channel(n.cfg); err != nil {
					ch = nil
				}
			}
			if err == nil {
				err = n.publish(ctx, ch, body)
			}
			if err == nil || try == 2 || ctx.Err() != nil {
				break
			}
			if ch != nil {
				_ = ch.Close()
				ch = nil
			}
		}
		if err != nil {
			n.log.ErrorContext(ctx, "notabene: publish failed", "event_type", msg["event_type"],
				"exchange", n.cfg.Exchange, "queue", n.cfg.QueueName, "error", err)
			errs = append(errs, fmt.Errorf("publish %v to exchange %q: %w", msg["event_type"], n.cfg.Exchange, err))
			continue
		}
		n.log.DebugContext(ctx, "notabene: published", "event_type", msg["event_type"], "exchange", n.cfg.Exchange)
	}
	return errors.Join(errs...)
}

func (n *Notabene) publish(ctx context.Context, ch *amqp.Channel, body []byte) error {
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, n.cfg.Exchange, n.cfg.QueueName, false, false, amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		Body:         body,
	})
	if err != nil {
		return err
	}
	ack, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("wait for confirm: %w", err)
	}
	if !ack {
		return errors.New("broker refused the message (nack)")
	}
	return nil
}

// Rollback forgets the collected notifications.
func (n *Notabene) Rollback(context.Context) error {
	n.pending = nil
	return nil
}

var _ pipeline.Handler = (*Notabene)(nil)
