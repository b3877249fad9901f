package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/distiller"
)

func init() { subcommands = append(subcommands, newDistillCmd) }

type distillOptions struct {
	configFile  string
	definitions string
	catchAll    bool
	pretty      bool
	catchAllSet bool
	configSet   bool
}

func newDistillCmd() *cobra.Command {
	var o distillOptions
	cmd := &cobra.Command{
		Use:   "distill [file.json|-]...",
		Short: "Show the events notifications turn into",
		Long: `distill turns notifications into events with the event definitions of the
configuration (distiller_config, catch_all_notifications,
distiller_trait_plugins) or of --definitions, and prints each event on
standard output in the event JSON encoding, one per line. It is the tool
for writing and checking event definitions.

An input (a file, or - for standard input, the default) holds one JSON
object, a JSON array of objects, or JSON lines. Why a notification was
dropped, and traits left out because their value did not convert, go to
standard error, followed by a summary line:

  Notifications: N, events: E, dropped: D

The exit status is 0 even when notifications are dropped; it is 1 when the
configuration, the definitions or an input cannot be read.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.catchAllSet = cmd.Flags().Changed("catch-all")
			o.configSet = cli.ConfigChanged(cmd)
			o.configFile = cli.FlagsOf(cmd).ConfigFile
			return runDistill(&o, args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.definitions, "definitions", "", "event definitions file; overrides distiller_config (the configuration is then optional)")
	fs.BoolVar(&o.catchAll, "catch-all", false, "keep notifications no definition matches (overrides catch_all_notifications)")
	fs.BoolVar(&o.pretty, "pretty", false, "indent the printed events")
	return cmd
}

// loadDistiller builds the distiller from the flags and the configuration.
func loadDistiller(o *distillOptions) (*distiller.Distiller, error) {
	var cfg *winchester.Config
	// Without --definitions the configuration is required; with it, only
	// a configuration named explicitly (or present) is read.
	if o.definitions == "" || o.configSet || fileExists(o.configFile) {
		c, err := winchester.Read(o.configFile)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	path := o.definitions
	catchAll := o.catchAll
	plugins := distiller.NewPluginRegistry()
	if cfg != nil {
		if path == "" {
			if cfg.DistillerConfig == "" {
				return nil, fmt.Errorf("%s: distiller_config is not set (or use --definitions)", cfg.File)
			}
			p, err := cfg.ResolvePath(cfg.DistillerConfig)
			if err != nil {
				return nil, fmt.Errorf("%s: distiller_config: %w", cfg.Pos("distiller_config"), err)
			}
			path = p
		}
		if !o.catchAllSet {
			catchAll = cfg.CatchAllNotifications
		}
		reg := winchester.NewRegistry()
		defer reg.Close()
		sel, err := reg.SelectTraitPlugins(cfg)
		if err != nil {
			return nil, err
		}
		plugins = sel
	}
	return distiller.Load(path, distiller.Config{CatchAll: catchAll, Plugins: plugins})
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// distillRun counts and prints.
type distillRun struct {
	d       *distiller.Distiller
	pretty  bool
	stdout  io.Writer
	stderr  io.Writer     // messages; clears the progress line first
	prog    *cli.Progress // on a terminal
	total   int
	events  int
	dropped int
}

func runDistill(o *distillOptions, inputs []string, stdin io.Reader, stdout, stderr io.Writer) error {
	d, err := loadDistiller(o)
	if err != nil {
		return err
	}
	prog := cli.NewProgress(stderr)
	defer prog.Done()
	r := &distillRun{d: d, pretty: o.pretty, stdout: stdout, stderr: prog.Writer(), prog: prog}
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	var errs []error
	for _, name := range inputs {
		var data []byte
		if name == "-" {
			data, err = io.ReadAll(stdin)
			name = "<stdin>"
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read input: %w", err))
			continue
		}
		if err := r.input(name, data); err != nil {
			errs = append(errs, err)
		}
	}
	prog.Done()
	fmt.Fprintf(stderr, "Notifications: %d, events: %d, dropped: %d\n", r.total, r.events, r.dropped)
	return errors.Join(errs...)
}

// input distills every notification of one input: a JSON array of
// notifications, or a sequence of JSON values (one object, JSON lines).
func (r *distillRun) input(name string, data []byte) error {
	if body := bytes.TrimSpace(data); len(body) > 0 && body[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(body, &list); err == nil {
			for i, raw := range list {
				if err := r.one(fmt.Sprintf("%s[%d]", name, i), raw); err != nil {
					return err
				}
			}
			return nil
		}
		// Not one valid array: read it as a sequence of values below, so
		// the error names a line.
	}
	for off := 0; off < len(data); {
		rest := data[off:]
		trimmed := bytes.TrimLeft(rest, " \t\r\n")
		if len(trimmed) == 0 {
			break
		}
		off += len(rest) - len(trimmed)
		line := 1 + bytes.Count(data[:off], []byte("\n"))
		dec := json.NewDecoder(bytes.NewReader(data[off:]))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			// Skip to the next line: JSON lines keep going after a bad one.
			end := bytes.IndexByte(data[off:], '\n')
			if end < 0 {
				end = len(data) - off
			}
			raw = data[off : off+end]
			off += end
		} else {
			off += int(dec.InputOffset())
		}
		if err := r.one(fmt.Sprintf("%s:%d", name, line), raw); err != nil {
			return err
		}
	}
	return nil
}

// one distills one notification and prints the event or why it was
// dropped. Only a failure to write is an error.
func (r *distillRun) one(where string, body []byte) error {
	r.total++
	r.prog.Update("distill: %d notifications, %d events, %d dropped", r.total, r.events, r.dropped)
	ev, res, err := r.d.Distill(body)
	for _, f := range res.Failed {
		fmt.Fprintf(r.stderr, "%s: %s: trait %s omitted: %v\n", where, ev.MessageID, f.Trait, f.Err)
	}
	var de *distiller.DropError
	if errors.As(err, &de) {
		r.dropped++
		fmt.Fprintf(r.stderr, "%s: %v\n", where, de)
		return nil
	}
	if err != nil {
		r.dropped++
		fmt.Fprintf(r.stderr, "%s: %v\n", where, err)
		return nil
	}
	out, err := ev.MarshalJSON()
	if err != nil {
		r.dropped++
		fmt.Fprintf(r.stderr, "%s: %s: cannot encode the event: %v\n", where, ev.MessageID, err)
		return nil
	}
	if r.pretty {
		var b bytes.Buffer
		if json.Indent(&b, out, "", "  ") == nil {
			out = b.Bytes()
		}
	}
	r.events++
	if _, err := fmt.Fprintf(r.stdout, "%s\n", out); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}
