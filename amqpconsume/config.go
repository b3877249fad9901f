package amqpconsume

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// Defaults of the consumer keys; see docs/AMQP.md.
const (
	// DefaultExchangeType is the type of the exchange declared when it is
	// missing: OpenStack services publish to topic exchanges.
	DefaultExchangeType = "topic"
	// DefaultBindingKey is the routing key bound when binding_keys is
	// empty: the topic OpenStack services publish notifications on.
	DefaultBindingKey = "notifications.info"
	// DefaultQueueType is the queue declared when it is missing.
	DefaultQueueType = QueueClassic
	// DefaultDeadLetterExchangeType is the type of the dead-letter
	// exchange: dead-lettered messages are routed by the name of the queue
	// they came from, so several consumers can share one exchange.
	DefaultDeadLetterExchangeType = "direct"
	// DeadQueueSuffix is appended to the queue's name to name the
	// dead-letter queue when dead_letter_queue is not set.
	DeadQueueSuffix = ".dead"
	// DefaultBatchSize is the number of deliveries ingested per batch.
	DefaultBatchSize = 500
	// DefaultBatchLinger is how long a batch waits to fill after its first
	// delivery.
	DefaultBatchLinger = 50 * time.Millisecond
	// DefaultReconnectDelay is the first delay before reconnecting to the
	// broker or retrying a batch the database refused; it doubles on every
	// further failure up to DefaultMaxReconnectDelay.
	DefaultReconnectDelay = 500 * time.Millisecond
	// DefaultMaxReconnectDelay caps the backoff.
	DefaultMaxReconnectDelay = 30 * time.Second
	// DefaultHeartbeat is the AMQP heartbeat interval.
	DefaultHeartbeat = 10 * time.Second
	// DefaultLagInterval is how often the depth of the queue is read.
	DefaultLagInterval = 15 * time.Second
)

// Formats of message bodies.
const (
	// FormatNotifications: OpenStack notifications (plain JSON or the
	// oslo.messaging v2 envelope), distilled into events.
	FormatNotifications = "notifications"
	// FormatEvents: flat events in the event JSON encoding
	// (docs/EVENT_JSON.md), stored as they are.
	FormatEvents = "events"
)

// Queue types.
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// Config is one entry of the consumers list of winchester.yaml. The YAML
// keys are the snake_case tags; Validate fills in the defaults.
type Config struct {
	// Name identifies the consumer in logs and metrics; unique.
	Name string `yaml:"name"`
	// URL is the broker URL (amqp:// or amqps://). ${VAR} references are
	// replaced from the environment (ExpandEnv), so credentials need not
	// be written in the file; $$ is a dollar sign.
	URL string `yaml:"url"`
	// Exchange is the exchange the queue is bound to, declared if missing.
	// Empty: the queue is consumed as it is, without bindings.
	Exchange string `yaml:"exchange"`
	// ExchangeType is the type used to declare the exchange (topic).
	ExchangeType string `yaml:"exchange_type"`
	// ExchangeDurable declares the exchange durable (default true). Set it
	// to false for OpenStack exchanges declared by services running with
	// amqp_durable_queues = false, or the declaration is refused.
	ExchangeDurable *bool `yaml:"exchange_durable"`
	// Queue is the queue consumed, declared durable if missing.
	Queue string `yaml:"queue"`
	// QueueType is classic (durable) or quorum.
	QueueType string `yaml:"queue_type"`
	// BindingKeys are the routing keys bound from Exchange to Queue
	// (default notifications.info).
	BindingKeys []string `yaml:"binding_keys"`
	// Format is what the message bodies hold: notifications (default) or
	// events.
	Format string `yaml:"format"`
	// Prefetch is how many unacknowledged deliveries the broker sends
	// ahead (default three times batch_size: one batch collected while two
	// are stored).
	Prefetch int `yaml:"prefetch"`
	// BatchSize is the most deliveries ingested in one batch.
	BatchSize int `yaml:"batch_size"`
	// BatchLinger is how long a batch waits for more deliveries after its
	// first one.
	BatchLinger Duration `yaml:"batch_linger"`
	// DeadLetterExchange receives the messages that cannot be ingested
	// (not JSON, not a notification, no event); declared if missing. Empty:
	// such messages are logged, counted and dropped.
	DeadLetterExchange string `yaml:"dead_letter_exchange"`
	// DeadLetterExchangeType is the type used to declare it (direct).
	DeadLetterExchangeType string `yaml:"dead_letter_exchange_type"`
	// DeadLetterQueue is the queue bound to the dead-letter exchange that
	// keeps this consumer's rejected messages (default queue + ".dead").
	DeadLetterQueue string `yaml:"dead_letter_queue"`
	// ReconnectDelay is the first backoff delay (broker lost, database
	// refusing a batch); it doubles up to MaxReconnectDelay.
	ReconnectDelay Duration `yaml:"reconnect_delay"`
	// MaxReconnectDelay caps the backoff.
	MaxReconnectDelay Duration `yaml:"max_reconnect_delay"`
	// Heartbeat is the AMQP heartbeat interval.
	Heartbeat Duration `yaml:"heartbeat"`
	// LagInterval is how often the queue's depth is read for the lag
	// metric (0: the default; negative: never).
	LagInterval Duration `yaml:"lag_interval"`

	// Line is the line of the entry in its file (set when decoded).
	Line int `yaml:"-"`
	// File names the file the entry came from, for messages.
	File string `yaml:"-"`

	expanded bool // ExpandEnv ran
}

// Duration is a time span read from a number of seconds (10, 0.5) or a Go
// duration string ("30s", "5m").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// UnmarshalYAML reads a number of seconds or a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := yamlfile.DecodeDuration(n)
	*d = Duration(v)
	return err
}

// UnmarshalYAML decodes one consumer strictly: every unknown key (with the
// closest known one suggested) and every value of the wrong type is an
// error naming the key and its line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return yamlfile.Join([]*yamlfile.Error{{Line: n.Line,
			Err: fmt.Errorf("a consumer must be a mapping of keys (name, url, queue, …), not %s", yamlfile.Describe(n))}})
	}
	type plain Config // no UnmarshalYAML: no recursion
	var p plain
	if err := yamlfile.Join(yamlfile.Decode(n, &p)); err != nil {
		return err
	}
	*c = Config(p)
	c.Line = n.Line
	return nil
}

// Validate fills in defaults and checks the values. The error names the
// consumer, the key and the line. ${VAR} references in the URL are left
// for ExpandEnv.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.where(key), fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		bad("name", "missing")
	}
	if c.URL == "" {
		bad("url", "missing (amqp://user:password@host:5672/vhost)")
	} else if err := checkURL(c.URL); err != nil {
		bad("url", "%v", err)
	}
	if c.Queue == "" {
		bad("queue", "missing")
	}
	if c.ExchangeType == "" {
		c.ExchangeType = DefaultExchangeType
	}
	if c.ExchangeDurable == nil {
		t := true
		c.ExchangeDurable = &t
	}
	if c.QueueType == "" {
		c.QueueType = DefaultQueueType
	}
	if c.QueueType != QueueClassic && c.QueueType != QueueQuorum {
		bad("queue_type", "want classic or quorum, got %q", c.QueueType)
	}
	if c.Format == "" {
		c.Format = FormatNotifications
	}
	if c.Format != FormatNotifications && c.Format != FormatEvents {
		bad("format", "want notifications or events, got %q", c.Format)
	}
	if c.Exchange != "" && len(c.BindingKeys) == 0 {
		c.BindingKeys = []string{DefaultBindingKey}
	}
	if c.Exchange == "" && len(c.BindingKeys) > 0 {
		bad("binding_keys", "set, but no exchange to bind to")
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize < 0 {
		bad("batch_size", "must be positive, got %d", c.BatchSize)
	}
	if c.Prefetch == 0 {
		c.Prefetch = 3 * c.BatchSize
	}
	if c.Prefetch < 0 || (c.BatchSize > 0 && c.Prefetch < c.BatchSize) {
		bad("prefetch", "must be at least batch_size (%d), got %d", c.BatchSize, c.Prefetch)
	}
	if c.BatchLinger == 0 {
		c.BatchLinger = Duration(DefaultBatchLinger)
	}
	if c.BatchLinger < 0 {
		bad("batch_linger", "must not be negative")
	}
	if c.DeadLetterExchange != "" {
		if c.DeadLetterExchangeType == "" {
			c.DeadLetterExchangeType = DefaultDeadLetterExchangeType
		}
		if c.DeadLetterQueue == "" && c.Queue != "" {
			c.DeadLetterQueue = c.Queue + DeadQueueSuffix
		}
		if c.DeadLetterQueue == c.Queue {
			bad("dead_letter_queue", "must differ from queue")
		}
		if c.DeadLetterExchange == c.Exchange {
			bad("dead_letter_exchange", "must differ from exchange")
		}
	} else if c.DeadLetterQueue != "" || c.DeadLetterExchangeType != "" {
		bad("dead_letter_queue", "set, but no dead_letter_exchange")
	}
	if c.ReconnectDelay == 0 {
		c.ReconnectDelay = Duration(DefaultReconnectDelay)
	}
	if c.MaxReconnectDelay == 0 {
		c.MaxReconnectDelay = Duration(DefaultMaxReconnectDelay)
	}
	if c.ReconnectDelay < 0 || c.MaxReconnectDelay < c.ReconnectDelay {
		bad("reconnect_delay", "must be positive and at most max_reconnect_delay")
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = Duration(DefaultHeartbeat)
	}
	if c.LagInterval == 0 {
		c.LagInterval = Duration(DefaultLagInterval)
	}
	return errors.Join(errs...)
}

// where names a key of the consumer for messages.
func (c *Config) where(key string) string {
	name := c.Name
	if name == "" {
		name = "(unnamed)"
	}
	switch {
	case c.File != "" && c.Line > 0:
		return fmt.Sprintf("%s:%d: consumer %s: %s", c.File, c.Line, name, key)
	case c.Line > 0:
		return fmt.Sprintf("line %d: consumer %s: %s", c.Line, name, key)
	}
	return fmt.Sprintf("consumer %s: %s", name, key)
}

// checkURL checks the scheme of a broker URL, and the rest once it holds
// no ${VAR} reference.
func checkURL(raw string) error {
	if !strings.HasPrefix(raw, "amqp://") && !strings.HasPrefix(raw, "amqps://") {
		return fmt.Errorf("want an amqp:// or amqps:// URL, got %q", RedactURL(raw))
	}
	if strings.Contains(raw, "$") {
		return nil
	}
	if _, err := url.Parse(raw); err != nil {
		return fmt.Errorf("invalid URL %q", RedactURL(raw))
	}
	return nil
}

// ExpandEnv replaces the ${VAR} references of the URL by the values
// getenv returns (the commands pass os.Getenv), so that credentials need
// not be written in the file; $$ is a dollar sign. A variable that is not
// set is an error naming it. Call it once, after Validate.
func (c *Config) ExpandEnv(getenv func(string) string) error {
	var missing []string
	expanded := os.Expand(c.URL, func(name string) string {
		if name == "$" {
			return "$"
		}
		v := getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return fmt.Errorf("%s: environment variable %s is not set", c.where("url"), strings.Join(missing, ", "))
	}
	if _, err := url.Parse(expanded); err != nil {
		return fmt.Errorf("%s: invalid URL once expanded", c.where("url"))
	}
	c.URL = expanded
	c.expanded = true
	return nil
}

// ValidateAll validates every consumer of a list read from file (named in
// messages) and checks that names are unique.
func ValidateAll(cs []Config, file string) error {
	var errs []error
	seen := map[string]int{}
	for i := range cs {
		cs[i].File = file
		if err := cs[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		if n := cs[i].Name; n != "" {
			if j, dup := seen[n]; dup {
				errs = append(errs, fmt.Errorf("%s: already used by consumer %d", cs[i].where("name"), j+1))
			}
			seen[n] = i
		}
	}
	return errors.Join(errs...)
}

// RedactURL returns an AMQP URL with its password replaced by "xxxxx".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
