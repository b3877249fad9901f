package winchester

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/job"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
)

// Registry holds, by name, everything a program adds to the engine: pipeline
// handlers (named in pipelines.yaml and pipeline_handlers), distiller trait
// plugins (named in event definitions and distiller_trait_plugins) and
// scheduled jobs (named by the handler of jobs entries). Every kind of
// extension is registered on this one type with a RegisterX(name, …)
// method and listed by an X() method, in the manner of database/sql's
// Register and Drivers; so are event subscribers (RegisterSubscriber).
//
// NewRegistry returns a registry holding the built-ins. Register before
// calling Open; a Registry is not safe for concurrent registration, and
// lookups after setup are. The Register methods panic on an empty name, a
// nil implementation or a name already taken: these are programming errors,
// found the first time the program starts.
//
// A Registry owns the resources its built-in handlers share (connection and
// token caches); Close releases them. An Engine opened with the registry
// releases them when it is closed, so close the registry yourself only when
// no engine was opened with it.
type Registry struct {
	handlers *pipeline.Registry
	plugins  *distiller.PluginRegistry
	jobs     map[string]job.Func
	builtins map[string]builtinJob
	// subscribers are the Go event subscribers, by name.
	subscribers map[string]Subscriber
}

// NewRegistry returns a registry holding the built-in handlers (logger,
// usage, notabene, atompub, under their names and the original's class
// paths), trait plugins (split, bitfield) and jobs (BuiltinJobs).
func NewRegistry() *Registry {
	h := pipeline.NewRegistry()
	handlers.RegisterBuiltins(h)
	return &Registry{handlers: h, plugins: distiller.NewPluginRegistry(), builtins: builtinJobs}
}

// RegisterHandler adds a pipeline handler type under name: the name
// pipelines.yaml entries use. The factory receives each entry's params,
// decodes them strictly and validates them when the pipelines are loaded;
// see docs/EXTENDING.md for the handler contract.
func (r *Registry) RegisterHandler(name string, f pipeline.Factory) {
	r.handlers.Register(name, f)
}

// Handlers returns the registered handler names (without the original's
// class-path aliases), sorted.
func (r *Registry) Handlers() []string { return r.handlers.Names() }

// RegisterTraitPlugin adds a distiller trait plugin under name: the name
// event definitions give as a trait's plugin, and the key
// distiller_trait_plugins entries of winchester.yaml use.
func (r *Registry) RegisterTraitPlugin(name string, f distiller.PluginFactory) {
	r.plugins.Register(name, f)
}

// TraitPlugins returns the registered trait plugin names, sorted.
func (r *Registry) TraitPlugins() []string { return r.plugins.Names() }

// Close releases the resources the built-in handlers share. Later calls do
// nothing.
func (r *Registry) Close() error { return r.handlers.Close() }

// ErrPluginNotAvailable is wrapped by the error for a distiller_trait_plugins
// entry that names no registered Go plugin (typically the original's Python
// class path).
var ErrPluginNotAvailable = errors.New("not available")

// SelectHandlers returns the handlers cfg's pipeline_handlers selects (all
// registered ones when it is empty). An unknown name is an error naming the
// entry's file and line and the known handlers.
func (r *Registry) SelectHandlers(cfg *Config) (*pipeline.Registry, error) {
	if len(cfg.PipelineHandlers) == 0 {
		return r.handlers.Select(nil)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cfg.PipelineHandlers)) {
		impl := cfg.PipelineHandlers[name]
		if _, err := r.handlers.Lookup(impl); err != nil {
			errs = append(errs, fmt.Errorf("%s: pipeline_handlers: %s: %w", cfg.Pos("pipeline_handlers."+name), name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r.handlers.Select(cfg.PipelineHandlers)
}

// SelectTraitPlugins returns the trait plugins the event definitions of cfg
// may use: every registered one, plus the names distiller_trait_plugins
// gives them. An entry "name: impl" makes name use the Go plugin
// registered as impl; when impl is not registered (typically the
// original's Python class path) the plugin registered as name serves it,
// and impl is only documentation. An entry matching neither is an error
// wrapping ErrPluginNotAvailable and naming the entry's file and line:
// Python classes cannot be loaded, so the program has to register a Go
// plugin of that name.
func (r *Registry) SelectTraitPlugins(cfg *Config) (*distiller.PluginRegistry, error) {
	out := distiller.NewPluginRegistry()
	for _, name := range r.plugins.Names() {
		if !hasPlugin(out, name) {
			f, _ := r.plugins.Lookup(name)
			out.Register(name, f)
		}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cfg.DistillerTraitPlugins)) {
		impl := cfg.DistillerTraitPlugins[name]
		pos := cfg.Pos("distiller_trait_plugins." + name)
		f, implOK := r.plugins.Lookup(impl)
		switch {
		case implOK && impl != name && hasPlugin(out, name):
			errs = append(errs, fmt.Errorf("%s: distiller_trait_plugins: %s: a plugin named %q is registered already; it cannot also be %q",
				pos, name, name, impl))
		case implOK && impl != name:
			out.Register(name, f)
		case hasPlugin(out, name):
			// the Go plugin registered under the name serves it
		default:
			errs = append(errs, fmt.Errorf("%s: distiller_trait_plugins: %s: %q is %w: register a Go plugin named %q (Registry.RegisterTraitPlugin; registered: %s)",
				pos, name, impl, ErrPluginNotAvailable, name, strings.Join(r.plugins.Names(), ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func hasPlugin(r *distiller.PluginRegistry, name string) bool {
	_, ok := r.Lookup(name)
	return ok
}
