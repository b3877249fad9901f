// Package cli holds what only the commands share: the common flags and
// their environment overrides (applied with winchester.Config.Override),
// slog setup and signal handling. Configuration loading and engine
// assembly live in the root package winchester.
package cli

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/winchester-go/winchester"
)

// EnvDatabaseURL names the environment variable that overrides
// database.url.
const EnvDatabaseURL = "WINCHESTER_DATABASE_URL"

// EnvReadURL names the environment variable that overrides
// database.read_url (the read replica).
const EnvReadURL = "WINCHESTER_READ_URL"

// Flags are the flags every command that reads winchester.yaml shares.
type Flags struct {
	ConfigFile  string // -c/--config
	DatabaseURL string // --database-url
	LogLevel    string // --log-level
	LogFormat   string // --log-format
	// ReadURL is --read-url, on the commands that read from a replica
	// (AddReadURLTo); ReadURLSet tells that it was given, an empty value
	// included (reads go to the primary).
	ReadURL    string
	ReadURLSet bool
}

// Names of the shared flags. --database is the old spelling of
// --database-url, kept working and hidden.
const (
	FlagConfig      = "config"
	FlagDatabaseURL = "database-url"
	FlagDatabase    = "database"
	FlagLogLevel    = "log-level"
	FlagLogFormat   = "log-format"
	FlagReadURL     = "read-url"
)

// AddReadURLTo registers --read-url on cmd, a command that reads from the
// read replica when database.read_url (or --read-url) names one.
func AddReadURLTo(cmd *cobra.Command) {
	cmd.Flags().String(FlagReadURL, "", "URL of a read replica of the PostgreSQL database to read from; overrides "+EnvReadURL+
		" and database.read_url (--read-url '' reads from the primary)")
}

// AddTo registers the flags on cmd alone.
func (f *Flags) AddTo(cmd *cobra.Command) { f.addTo(cmd.Flags()) }

// AddPersistentTo registers the flags on cmd and every sub-command, so
// that "-c FILE" works before or after the sub-command's name. Sub-commands
// read them with FlagsOf.
func (f *Flags) AddPersistentTo(cmd *cobra.Command) { f.addTo(cmd.PersistentFlags()) }

func (f *Flags) addTo(fs *pflag.FlagSet) {
	fs.StringVarP(&f.ConfigFile, FlagConfig, "c", winchester.DefaultConfigFile, "configuration file (.yaml, .yml or .json)")
	fs.StringVar(&f.DatabaseURL, FlagDatabaseURL, "", "database URL; overrides "+EnvDatabaseURL+" and database.url")
	fs.StringVar(&f.DatabaseURL, FlagDatabase, "", "the old spelling of --database-url")
	_ = fs.MarkHidden(FlagDatabase)
	fs.StringVar(&f.LogLevel, FlagLogLevel, "", "log level: debug, info, warning, error (overrides log_level)")
	fs.StringVar(&f.LogFormat, FlagLogFormat, "", "log format: text or json (overrides log_format)")
}

// FlagsOf returns the shared flags as given to cmd, registered on it or on
// an ancestor (AddPersistentTo); flags that are not registered keep their
// defaults.
func FlagsOf(cmd *cobra.Command) Flags {
	f := Flags{ConfigFile: winchester.DefaultConfigFile}
	fs := cmd.Flags()
	get := func(name string, dst *string) {
		if fl := fs.Lookup(name); fl != nil {
			*dst = fl.Value.String()
		} else if fl := cmd.InheritedFlags().Lookup(name); fl != nil {
			*dst = fl.Value.String()
		}
	}
	get(FlagConfig, &f.ConfigFile)
	get(FlagDatabaseURL, &f.DatabaseURL)
	get(FlagLogLevel, &f.LogLevel)
	get(FlagLogFormat, &f.LogFormat)
	if fl := fs.Lookup(FlagReadURL); fl != nil && fl.Changed {
		f.ReadURL, f.ReadURLSet = fl.Value.String(), true
	}
	return f
}

// ConfigChanged reports whether -c/--config was given to cmd (or before
// it, to an ancestor).
func ConfigChanged(cmd *cobra.Command) bool {
	if fl := cmd.Flags().Lookup(FlagConfig); fl != nil && fl.Changed {
		return true
	}
	fl := cmd.InheritedFlags().Lookup(FlagConfig)
	return fl != nil && fl.Changed
}

// Read reads the config file and applies the overrides of the environment
// (getenv, os.Getenv in commands; nil for none) and of the flags, without
// validating: call Validate. Relative SQLite paths in an overriding
// database URL are resolved in the current directory.
func (f *Flags) Read(getenv func(string) string) (*winchester.Config, error) {
	name := f.ConfigFile
	if name == "" {
		name = winchester.DefaultConfigFile
	}
	c, err := winchester.Read(name)
	if err != nil {
		return nil, err
	}
	if getenv != nil {
		if v := getenv(EnvDatabaseURL); v != "" {
			if err := c.Override("database.url", v, "environment variable "+EnvDatabaseURL); err != nil {
				return nil, err
			}
		}
	}
	if getenv != nil {
		if v := getenv(EnvReadURL); v != "" {
			if err := c.Override("database.read_url", v, "environment variable "+EnvReadURL); err != nil {
				return nil, err
			}
		}
	}
	if f.ReadURLSet {
		if err := c.Override("database.read_url", f.ReadURL, "flag --"+FlagReadURL); err != nil {
			return nil, err
		}
	}
	overrides := []struct{ key, value, flag string }{
		{"database.url", f.DatabaseURL, "--database-url"},
		{"log_level", f.LogLevel, "--log-level"},
		{"log_format", f.LogFormat, "--log-format"},
	}
	for _, o := range overrides {
		if o.value == "" {
			continue
		}
		if err := c.Override(o.key, o.value, "flag "+o.flag); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Setup is what a command does first: Read with overrides, Validate, build
// the logger (writing to logOut) and log the config's warnings.
func (f *Flags) Setup(getenv func(string) string, logOut io.Writer) (*winchester.Config, *slog.Logger, error) {
	c, err := f.Read(getenv)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	logger, err := NewLogger(logOut, c.LogLevel, c.LogFormat)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range c.Warnings {
		logger.Warn(w)
	}
	logger.Debug("configuration loaded", "file", c.File, "database", winchester.MaskURL(c.DatabaseURL))
	return c, logger, nil
}
