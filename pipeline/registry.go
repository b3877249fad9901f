package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Registry maps handler names to factories. NewRegistry returns an empty
// one; handlers.RegisterBuiltins adds the built-in handlers and programs
// add their own with Register, before loading pipelines. A Registry is not
// safe for concurrent Register calls; lookups after setup are.
type Registry struct {
	factories map[string]Factory
	aliases   map[string]string // alias -> registered name
	closers   []func() error
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}, aliases: map[string]string{}}
}

// Alias makes alias another name of the registered handler name (for
// example the original configuration's class path
// "winchester.pipeline_handler:LoggingHandler" for "logger"). It panics
// when alias is empty or taken, or name is not registered.
func (r *Registry) Alias(alias, name string) {
	if alias == "" {
		panic("pipeline: Alias with an empty name")
	}
	if _, ok := r.factories[name]; !ok {
		panic(fmt.Sprintf("pipeline: Alias %q of unregistered handler %q", alias, name))
	}
	if _, dup := r.factories[alias]; dup {
		panic(fmt.Sprintf("pipeline: Alias %q is a registered handler name", alias))
	}
	if _, dup := r.aliases[alias]; dup {
		panic(fmt.Sprintf("pipeline: Alias %q set twice", alias))
	}
	if r.aliases == nil {
		r.aliases = map[string]string{}
	}
	r.aliases[alias] = name
}

// OnClose adds a function Close calls: it releases resources the
// registered handlers share (connection and token caches).
func (r *Registry) OnClose(fn func() error) {
	if fn != nil {
		r.closers = append(r.closers, fn)
	}
}

// Register adds a handler type. It panics when name is empty, f is nil or
// the name is taken: registration mistakes are programming errors.
func (r *Registry) Register(name string, f Factory) {
	if name == "" {
		panic("pipeline: Register with an empty handler name")
	}
	if f == nil {
		panic(fmt.Sprintf("pipeline: Register handler %q with a nil factory", name))
	}
	if r.factories == nil {
		r.factories = map[string]Factory{}
	}
	if _, dup := r.factories[name]; dup {
		panic(fmt.Sprintf("pipeline: Register called twice for handler %q", name))
	}
	if _, dup := r.aliases[name]; dup {
		panic(fmt.Sprintf("pipeline: Register handler %q: the name is an alias", name))
	}
	r.factories[name] = f
}

// Names returns the registered handler names (aliases excluded), sorted.
func (r *Registry) Names() []string {
	return slices.Sorted(maps.Keys(r.factories))
}

// ErrUnknownHandler is wrapped by the errors of lookups of unregistered
// handler names.
var ErrUnknownHandler = errors.New("unknown handler")

// Lookup returns the factory registered under name or an alias of it. The
// error for an unknown name lists the known ones.
func (r *Registry) Lookup(name string) (Factory, error) {
	if f, ok := r.factories[name]; ok {
		return f, nil
	}
	if target, ok := r.aliases[name]; ok {
		if f, ok := r.factories[target]; ok {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownHandler, name, strings.Join(r.Names(), ", "))
}

// Select validates a pipeline_handlers map of winchester.yaml (config name
// -> registered name or alias) and returns a registry that knows exactly the
// config names. An empty map selects every registered handler. The result
// shares r's factories and their resources: closing either one releases
// them (Close is idempotent).
func (r *Registry) Select(names map[string]string) (*Registry, error) {
	if len(names) == 0 {
		return &Registry{factories: maps.Clone(r.factories), aliases: maps.Clone(r.aliases), closers: slices.Clone(r.closers)}, nil
	}
	out := &Registry{factories: map[string]Factory{}, aliases: map[string]string{}, closers: slices.Clone(r.closers)}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if name == "" {
			errs = append(errs, errors.New("pipeline_handlers: empty handler name"))
			continue
		}
		f, err := r.Lookup(names[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline_handlers: %s: %w", name, err))
			continue
		}
		out.factories[name] = f
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Close releases the resources the registry's handlers share (for example
// RabbitMQ connections). Call it once no pipeline runs any more; later
// calls do nothing.
func (r *Registry) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	r.closers = nil
	return errors.Join(errs...)
}
