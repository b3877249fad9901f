package winchester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
	"github.com/winchester-go/winchester/trigger"
)

// SubscriberConfig is one entry of subscribers in winchester.yaml: code
// that receives every stored event passing its filter, one at a time,
// durably and off the ingest path (see package subscriber and
// docs/SUBSCRIBERS.md).
type SubscriberConfig struct {
	// Handler names what receives the events: a Go subscriber the
	// program registers with Registry.RegisterSubscriber, or a pipeline
	// handler type (webhook, exec, or one the program registers) run with
	// Params on a one-event list. Required.
	Handler string `yaml:"handler"`
	// Params are the params of a pipeline handler type, as in
	// pipelines.yaml (a Go subscriber takes none).
	Params yamlNode `yaml:"params"`
	// Filter selects the events, in the syntax of a trigger's
	// match_criteria: one entry or a list of them, each with event_type
	// (patterns, "!" exclusions), timestamp and traits; an event passes
	// when it matches one entry. Default: every event.
	Filter yamlNode `yaml:"filter"`
	// Enabled switches the subscriber on; default true. A Go subscriber
	// with an Enabled(*Config) bool method is asked too. A disabled
	// subscriber receives nothing and keeps no state: its position and
	// dead letters are deleted, and enabled again it starts with the
	// events stored from then on.
	Enabled *bool `yaml:"enabled"`
	// Attempts is how many times an event is offered before it goes to
	// the subscriber's dead letters; default 5.
	Attempts int `yaml:"attempts"`
	// Backoff is the wait after the first failed attempt; it doubles
	// after each further one, up to 5m; default 1s.
	Backoff Duration `yaml:"backoff"`
	// Parallel allows unordered delivery: up to Concurrency events at
	// once. Default false: one at a time, in event order.
	Parallel bool `yaml:"parallel"`
	// Concurrency is the number of events in flight at once; default 1,
	// more only with parallel.
	Concurrency int `yaml:"concurrency"`
	// BatchSize is the number of events read at once; the position is
	// stored after each batch, so it bounds the deliveries repeated after
	// a worker is killed; default 100.
	BatchSize int `yaml:"batch_size"`
	// Timeout bounds one delivery attempt; default 30s.
	Timeout Duration `yaml:"timeout"`
}

// yamlNode keeps a value of the config file as written, with its lines,
// for a loader of its own (handler params, criteria).
type yamlNode struct{ n *yaml.Node }

// UnmarshalYAML keeps the node.
func (y *yamlNode) UnmarshalYAML(n *yaml.Node) error {
	y.n = n
	return nil
}

// enabled reports whether the entry switches the subscriber on.
func (s SubscriberConfig) enabled() bool { return s.Enabled == nil || *s.Enabled }

// filter compiles the entry's filter (nil: every event).
func (s SubscriberConfig) filter(file string) ([]*trigger.Criteria, error) {
	if s.Filter.n == nil {
		return nil, nil
	}
	return trigger.ParseEventCriteria(file, s.Filter.n)
}

// validateSubscribers checks the subscribers section. Every problem names
// its key and the line of the value, or of the entry when the key is
// missing.
func (c *Config) validateSubscribers() []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Subscribers)) {
		s := c.Subscribers[name]
		bad := func(field, format string, args ...any) {
			key := "subscribers." + name + "." + field
			at := key
			if !c.has(key) {
				at = "subscribers." + name
			}
			errs = append(errs, fmt.Errorf("%s: %s: %s", c.pos(at), key, fmt.Sprintf(format, args...)))
		}
		if s.Handler == "" {
			bad("handler", "required: webhook, exec, another handler type, or the name of a Go subscriber the program registers")
		}
		if s.Attempts < 0 {
			bad("attempts", "must not be negative")
		}
		if s.Backoff < 0 {
			bad("backoff", "must not be negative")
		}
		if s.Timeout < 0 {
			bad("timeout", "must not be negative")
		}
		if s.BatchSize < 0 {
			bad("batch_size", "must not be negative")
		}
		switch {
		case s.Concurrency < 0:
			bad("concurrency", "must not be negative")
		case s.Concurrency > 1 && !s.Parallel:
			bad("concurrency", "%d events at once need parallel: true (ordered delivery is one at a time)", s.Concurrency)
		}
		if _, err := s.filter(c.displayName()); err != nil {
			errs = append(errs, underKey(err, "subscribers."+name+".filter"))
		}
	}
	return errs
}

// underKey puts the criteria problems of err under key, the path of the
// criteria in winchester.yaml: "file:line: key.field: problem".
func underKey(err error, key string) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var de *trigger.DefinitionError
		if !errors.As(e, &de) {
			return fmt.Errorf("%s: %w", key, err)
		}
		switch {
		case de.Field == "":
			de.Field = key
		case strings.HasPrefix(de.Field, "["):
			de.Field = key + de.Field
		default:
			de.Field = key + "." + de.Field
		}
	}
	return err
}

// Subscriber is an event subscriber written in Go, registered with
// Registry.RegisterSubscriber and named by the handler of a subscribers
// entry. Deliver receives one event; nil means delivered, an error is a
// failed attempt (retried with the entry's backoff, then dead-lettered).
// Delivery is at least once: use d.IdempotencyKey to drop repeats.
type Subscriber interface {
	Deliver(ctx context.Context, d subscriber.Delivery) error
}

// SubscriberFunc makes a function a Subscriber.
type SubscriberFunc func(ctx context.Context, d subscriber.Delivery) error

// Deliver calls f.
func (f SubscriberFunc) Deliver(ctx context.Context, d subscriber.Delivery) error { return f(ctx, d) }

// SubscriberEnabler is the optional hook of a Subscriber that decides,
// from the whole configuration, whether it runs (StoryBoard's enabled()).
// It is asked when the configuration is loaded, only when the entry is
// not switched off by enabled: false.
type SubscriberEnabler interface {
	Enabled(cfg *Config) bool
}

// RegisterSubscriber adds a Go subscriber under name: the name the
// handler of a subscribers entry in winchester.yaml gives.
func (r *Registry) RegisterSubscriber(name string, s Subscriber) {
	if name == "" {
		panic("winchester: RegisterSubscriber with an empty name")
	}
	if s == nil {
		panic(fmt.Sprintf("winchester: RegisterSubscriber %q with a nil subscriber", name))
	}
	if r.subscribers == nil {
		r.subscribers = map[string]Subscriber{}
	}
	if _, dup := r.subscribers[name]; dup {
		panic(fmt.Sprintf("winchester: RegisterSubscriber called twice for %q", name))
	}
	r.subscribers[name] = s
}

// Subscribers returns the registered Go subscriber names, sorted.
func (r *Registry) Subscribers() []string { return slices.Sorted(maps.Keys(r.subscribers)) }

// SubscriberDefinitions returns the subscribers cfg configures, disabled
// ones included; entries whose filter Config.Validate refuses are left
// out. A handler names a registered Go subscriber, else a
// handler type of handlers (its params decoded and validated now). An
// enabled entry whose handler is neither is an error naming the entry's
// file and line.
func (r *Registry) SubscriberDefinitions(cfg *Config, handlers *pipeline.Registry, log *slog.Logger) ([]subscriber.Definition, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var defs []subscriber.Definition
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cfg.Subscribers)) {
		sc := cfg.Subscribers[name]
		d := subscriber.Definition{Name: name, Disabled: !sc.enabled(), Attempts: sc.Attempts, Backoff: sc.Backoff.Std(),
			Parallel: sc.Parallel, Concurrency: sc.Concurrency, BatchSize: sc.BatchSize, Timeout: sc.Timeout.Std()}
		filter, err := sc.filter(cfg.displayName())
		if err != nil {
			continue // Config.Validate reports it
		}
		if filter != nil {
			d.Match = func(ev stream.Event) bool { return trigger.MatchAny(filter, ev) }
		}
		pos := cfg.Pos("subscribers." + name + ".handler")
		if s, ok := r.subscribers[sc.Handler]; ok {
			if sc.Params.n != nil {
				errs = append(errs, fmt.Errorf("%s: subscribers.%s.params: the Go subscriber %q takes no params",
					cfg.Pos("subscribers."+name+".params"), name, sc.Handler))
				continue
			}
			if e, ok := s.(SubscriberEnabler); ok && !d.Disabled {
				d.Disabled = !e.Enabled(cfg)
			}
			d.Deliver = s.Deliver
		} else if f, err := handlers.Lookup(sc.Handler); err == nil {
			p, err := pipeline.NewParams(cfg.displayName(), cfg.Line("subscribers."+name), sc.Handler, sc.Params.n)
			if err == nil {
				var b pipeline.Builder
				if b, err = f(p); err == nil {
					d.Deliver = handlerDelivery(name, b, log.With("subscriber", name, "handler", sc.Handler))
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("subscribers.%s: %w", name, err))
				continue
			}
		} else if !d.Disabled {
			known := append(r.Subscribers(), handlers.Names()...)
			errs = append(errs, fmt.Errorf("%s: subscribers.%s.handler: %q is neither a Go subscriber (Registry.RegisterSubscriber) nor a handler type (known: %s)",
				pos, name, sc.Handler, strings.Join(known, ", ")))
			continue
		}
		defs = append(defs, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return defs, nil
}

// SubscriberAction is the action a pipeline handler run for a subscriber
// sees (Env.Action, and WINCHESTER_ACTION for exec).
const SubscriberAction = "deliver"

// handlerDelivery delivers with a pipeline handler: a fresh handler per
// attempt gets the one-event list (its Env names the subscriber as the
// stream's trigger, stream id 0, action "deliver", and the delivery's
// idempotency key), then commits; a failure rolls it back.
func handlerDelivery(name string, b pipeline.Builder, log *slog.Logger) subscriber.DeliverFunc {
	return func(ctx context.Context, d subscriber.Delivery) error {
		h, err := b()
		if err != nil {
			return err
		}
		env := pipeline.NewEnv(0, name, log.With("event_id", d.EventID))
		env.Action, env.IdempotencyKey = SubscriberAction, d.IdempotencyKey
		if _, err := h.HandleEvents(ctx, []stream.Event{d.Event}, env); err != nil && !errors.Is(err, pipeline.ErrHalt) {
			return errors.Join(err, h.Rollback(context.WithoutCancel(ctx)))
		}
		return h.Commit(ctx)
	}
}

// NewSubscriberRunner returns a runner of the configured subscribers named
// name (its worker_id in claims), with the configuration's worker_lease
// as the lease of its claims.
func (e *Engine) NewSubscriberRunner(name string) (*subscriber.Runner, error) {
	ss, ok := e.Store.(subscriber.Store)
	if !ok {
		return nil, fmt.Errorf("the %T store cannot keep subscriber positions", e.Store)
	}
	return subscriber.NewRunner(ss, e.Defs.Subscribers, subscriber.RunnerConfig{Name: name, Lease: e.Config.WorkerLease.Std(),
		Clock: e.Clock, Logger: e.Logger})
}
