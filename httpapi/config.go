package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// Defaults of Config (the http section of winchester.yaml).
const (
	// DefaultListen is the address the API listens on: the loopback
	// interface only, until an operator decides otherwise.
	DefaultListen = "127.0.0.1:8080"
	// DefaultMaxBodyBytes is the largest request body accepted.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxItems is the most events or notifications one request may
	// hold.
	DefaultMaxItems = 10000
	// DefaultRequestTimeout bounds the work of one request (reading the
	// body, storing, answering).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes idle keep-alive connections.
	DefaultIdleTimeout = 2 * time.Minute
)

// Scopes of bearer tokens.
const (
	// ScopeRead: GET /v1/... (streams, events, triggers) and POST
	// /v1/explain, which only reads.
	ScopeRead = "read"
	// ScopeWrite: POST /v1/events, /v1/notifications, /event/log.
	ScopeWrite = "write"
	// ScopeAdmin: POST /v1/streams/{id}/reset, and everything else.
	ScopeAdmin = "admin"
)

var knownScopes = []string{ScopeRead, ScopeWrite, ScopeAdmin}

// Config is the http section of winchester.yaml.
type Config struct {
	// Listen is the address to listen on, host:port ("" : DefaultListen).
	Listen string `yaml:"listen"`
	// TLSCertFile and TLSKeyFile, when both set, make the API serve HTTPS
	// with this certificate and key (PEM files).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// Tokens are the accepted bearer tokens and their scopes. Without any
	// token (here or in TokensFile) the API asks for none.
	Tokens []Token `yaml:"tokens"`
	// TokensFile names a file of further tokens, one per line: the token,
	// then its scopes separated by spaces or commas; "#" starts a comment.
	TokensFile string `yaml:"tokens_file"`
	// MaxBodyBytes is the largest request body accepted (413 beyond).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxItems is the most events or notifications one request may hold
	// (413 beyond).
	MaxItems int `yaml:"max_items"`
	// RequestTimeout bounds a request from its first byte to the answer.
	RequestTimeout Duration `yaml:"request_timeout"`
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// UI serves the web console under /ui (default true; false, or
	// winchester serve --no-ui, switches it off). It takes the same
	// tokens: read scope to view, admin scope to reset streams.
	UI *bool `yaml:"ui"`
}

// UIEnabled reports whether the web console is served (UI unset: yes).
func (c Config) UIEnabled() bool { return c.UI == nil || *c.UI }

// Duration is a time span read from a number of seconds (30, 0.5) or a
// duration string ("30s", "2m"), like the other durations of
// winchester.yaml.
type Duration time.Duration

// UnmarshalYAML reads a number of seconds or a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := yamlfile.DecodeDuration(n)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Token is one accepted bearer token.
type Token struct {
	// Token is the secret the client sends (Authorization: Bearer …).
	Token string `yaml:"token"`
	// Scopes are what it allows: read, write, admin (admin allows all).
	Scopes []string `yaml:"scopes"`
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxItems <= 0 {
		c.MaxItems = DefaultMaxItems
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = Duration(DefaultRequestTimeout)
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = Duration(DefaultReadHeaderTimeout)
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	return c
}

// Validate checks the settings that can be checked without I/O.
func (c Config) Validate() error {
	var errs []error
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("http: tls_cert_file and tls_key_file go together: set both or neither"))
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"request_timeout", c.RequestTimeout}, {"read_header_timeout", c.ReadHeaderTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("http.%s: %s: must not be negative", d.key, d.v.Std()))
		}
	}
	for i, t := range c.Tokens {
		if err := checkToken(t); err != nil {
			errs = append(errs, fmt.Errorf("http.tokens[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func checkToken(t Token) error {
	if len(t.Token) < 16 {
		return errors.New("token: at least 16 characters")
	}
	if len(t.Scopes) == 0 {
		return fmt.Errorf("scopes: none given (known: %s)", strings.Join(knownScopes, ", "))
	}
	for _, s := range t.Scopes {
		if !slices.Contains(knownScopes, s) {
			return fmt.Errorf("scopes: unknown scope %q (known: %s)", s, strings.Join(knownScopes, ", "))
		}
	}
	return nil
}

// LoadTokens returns the tokens of the configuration and of its tokens
// file. Problems name the file and line.
func (c Config) LoadTokens() ([]Token, error) {
	tokens := slices.Clone(c.Tokens)
	if c.TokensFile == "" {
		return tokens, nil
	}
	data, err := os.ReadFile(c.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("http.tokens_file: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var errs []error
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
		if len(fields) == 0 {
			continue
		}
		t := Token{Token: fields[0], Scopes: fields[1:]}
		if err := checkToken(t); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", c.TokensFile, line, err))
			continue
		}
		tokens = append(tokens, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tokens, nil
}
