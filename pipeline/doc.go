// Package pipeline defines pipelines (pipelines.yaml), the handler contract,
// the handler registry and the chain runner, plus the worker that claims
// fired and expired streams and runs their pipelines.
//
// # Definitions
//
// pipelines.yaml maps a pipeline name to a list of handler entries. An entry
// is a handler name, or a mapping with the handler name and its params:
//
//	test_pipeline:
//	  - logger
//	  - name: usage
//	  - name: atompub
//	    params: {url: "https://atom.example.com/nova/events", content_format: cuf_xml}
//
// A pipeline may also be a mapping that sets its time limits and its error
// policy, and an entry may set its own time limits:
//
//	notify:
//	  timeout: {handle: 10s, commit: 2m}  # defaults 30s and 1m; or one duration
//	  on_error: continue                  # default rollback
//	  handlers:
//	    - usage
//	    - name: webhook
//	      timeout: {commit: 30s}
//	      params: {url: "https://billing.example.com/hooks/usage"}
//
// A call past a limit fails like any handler error (ErrTimeout). Under
// OnErrorContinue a failing handler is rolled back alone and skipped
// (Result.Skipped) while the others run and commit.
//
// Parse and Load check every entry against a Registry: an entry without a
// name, an unknown handler, an unknown key or a bad param is a *ConfigError
// naming the file, line, pipeline, handler and param. Each handler's
// Factory decodes its params strictly and validates them at load time.
//
// # The handler contract
//
// A Handler has three methods:
//
//   - HandleEvents(ctx, events, env) receives the previous handler's output
//     (the first handler gets the stream's events, in timestamp order) and
//     returns the list for the next one. It may drop events and append new
//     ones. It must have no external side effects: the run may be rolled
//     back and retried. The events are shared with the caller and the other
//     handlers (their Traits maps included): build a new slice, and Clone an
//     event before changing it.
//   - Commit(ctx) performs the side effects (publishing, sending). It is
//     called, in pipeline order, on every handler that ran, once all of them
//     succeeded.
//   - Rollback(ctx) discards the run's work. When any HandleEvents fails it
//     is called on every handler of the pipeline, including those that never
//     ran.
//
// A fresh handler is built for every run (by the Builder its Factory
// returned), so a handler may keep per-run state between HandleEvents and
// Commit; state shared between runs (connections, token caches) belongs to
// the factory. Env carries the stream id and name and a scratch map shared
// by the handlers of one run, for data passed to later handlers.
//
// # Outcomes of a run
//
// Pipeline.Run returns a Result: the final event list and the new events
// (those whose message_id was not among the input events), which the
// worker stores and feeds back into the triggers.
//
//   - A Builder failure fails the run before any handler ran
//     (*HandlerError, Op OpBuild); nothing is rolled back.
//   - A HandleEvents failure, or cancellation of ctx between handlers, rolls
//     every handler back and fails the run with a *HandlerError (Op
//     OpHandle). Rollback errors are joined to the cause, never lost.
//   - A handler may halt the chain on purpose by returning ErrHalt (possibly
//     wrapped): its events are the final list, the remaining handlers are
//     skipped (neither run nor committed), and the handlers that ran commit.
//     This is a success.
//   - A failing Commit does not stop the later commits, but the run returns
//     its Result with a *CommitError (errors.Is(err, ErrCommit)) listing each
//     failed handler. Side effects may have partly happened, so the worker
//     puts the stream in its error state instead of completing it silently.
//
// # Adding a handler
//
// Write a type implementing Handler and a Factory, and register it on the
// registry before loading pipelines:
//
//	type stampParams struct {
//		Trait string `yaml:"trait"`
//	}
//
//	func newStamp(p pipeline.Params) (pipeline.Builder, error) {
//		var cfg stampParams
//		if err := p.Decode(&cfg); err != nil {
//			return nil, err
//		}
//		if cfg.Trait == "" {
//			return nil, p.Errorf("trait", "required")
//		}
//		return func() (pipeline.Handler, error) { return &stamp{trait: cfg.Trait}, nil }, nil
//	}
//
//	func main() {
//		reg := pipeline.NewRegistry()
//		defer reg.Close()
//		handlers.RegisterBuiltins(reg) // logger, usage, notabene, atompub, webhook, exec, filter, halt
//		reg.Register("stamp", newStamp)
//		defs, err := pipeline.Load("pipelines.yaml", reg)
//		...
//	}
//
// The pipeline_handlers map of winchester.yaml (config name -> registered
// name) is checked with Registry.Select, which also accepts the original
// class paths of the built-ins (winchester.pipeline_handler:LoggingHandler,
// :UsageHandler, :NotabeneHandler, :AtomPubHandler).
package pipeline
