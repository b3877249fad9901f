package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
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
	fs.StringVarP(&f.ConfigFile, "config", "c", DefaultConfigFile, "configuration file (.yaml, .yml or .json)")
	fs.StringVar(&f.DatabaseURL, "database-url", "", "database URL; overrides "+EnvDatabaseURL+" and database.url")
	fs.StringVar(&f.LogLevel, "log-level", "", "log level: debug, info, warning, error (overrides log_level)")
	fs.StringVar(&f.LogFormat, "log-format", "", "log format: text or json (overrides log_format)")
}

// Read reads the config file and applies the overrides of the environment
// (getenv, os.Getenv in commands; nil for none) and of the flags, without
// validating: call Validate. Relative SQLite paths in an overriding
// database URL are resolved in the current directory.
func (f *Flags) Read(getenv func(string) string) (*Config, error) {
	name := f.ConfigFile
	if name == "" {
		name = DefaultConfigFile
	}
	c, err := Read(name)
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("current directory: %w", err)
	}
	if getenv != nil {
		if v := getenv(EnvDatabaseURL); v != "" {
			c.override("database.url", "environment variable "+EnvDatabaseURL)
			c.Database.URL = v
			c.dbBase = cwd
		}
	}
	if f.DatabaseURL != "" {
		c.override("database.url", "flag --database-url")
		c.Database.URL = f.DatabaseURL
		c.dbBase = cwd
	}
	if f.LogLevel != "" {
		c.override("log_level", "flag --log-level")
		c.LogLevel = f.LogLevel
	}
	if f.LogFormat != "" {
		c.override("log_format", "flag --log-format")
		c.LogFormat = f.LogFormat
	}
	return c, nil
}

func (c *Config) override(key, source string) {
	if c.origin == nil {
		c.origin = map[string]string{}
	}
	c.origin[key] = source
}

// Setup is what a command does first: Read with overrides, Validate, build
// the logger (writing to logOut) and log the config's warnings.
func (f *Flags) Setup(getenv func(string) string, logOut io.Writer) (*Config, *slog.Logger, error) {
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
	logger.Debug("configuration loaded", "file", c.File, "database", MaskURL(c.DatabaseURL))
	return c, logger, nil
}
