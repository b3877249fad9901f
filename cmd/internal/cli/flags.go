// Package cli holds what only the commands share: the common flags and
// their environment overrides (applied with winchester.Config.Override),
// slog setup and signal handling. Configuration loading and engine
// assembly live in the root package winchester.
package cli

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
)

// EnvDatabaseURL names the environment variable that overrides
// database.url.
const EnvDatabaseURL = "WINCHESTER_DATABASE_URL"

// Flags are the flags every command that reads winchester.yaml shares.
type Flags struct {
	ConfigFile  string // -c/--config
	DatabaseURL string // --database-url
	LogLevel    string // --log-level
	LogFormat   string // --log-format
}

// AddTo registers the flags on cmd.
func (f *Flags) AddTo(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.ConfigFile, "config", "c", winchester.DefaultConfigFile, "configuration file (.yaml, .yml or .json)")
	fs.StringVar(&f.DatabaseURL, "database-url", "", "database URL; overrides "+EnvDatabaseURL+" and database.url")
	fs.StringVar(&f.LogLevel, "log-level", "", "log level: debug, info, warning, error (overrides log_level)")
	fs.StringVar(&f.LogFormat, "log-format", "", "log format: text or json (overrides log_format)")
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
