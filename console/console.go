// Package console is Winchester's web console: server-rendered pages
// (html/template, templates and stylesheet embedded, no script) that show
// an engine's streams, events, triggers and jobs, and let an operator
// reset a stream in error. The HTTP API (package httpapi) serves it under
// Prefix with the API's own tokens; docs/CONSOLE.md shows every page.
//
// Authentication: with an AuthFunc, every page needs a token with read
// access and the reset button one with admin access. A browser sends the
// token in a cookie set by the login form (HttpOnly, SameSite=Strict,
// Secure over TLS); other clients may send Authorization: Bearer. Every
// POST carries a CSRF token that must equal the value of a cookie the
// console set (double submit), so another site cannot post on the
// operator's behalf even without SameSite.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Prefix is the path under which the console is served.
const Prefix = "/ui"

// Cookie names.
const (
	// TokenCookie holds the bearer token a browser logged in with.
	TokenCookie = "winchester_token"
	// CSRFCookie holds the value every form posts back.
	CSRFCookie = "winchester_csrf"
)

// Store is what the console reads (and resets streams with). Stores that
// also implement db.StateCounter count streams by state cheaply; those
// that implement db.JobStore show the jobs' progress.
type Store interface {
	db.Ops
}

// Access is what a token allows in the console.
type Access struct {
	// Read: view every page.
	Read bool
	// Admin: also reset streams.
	Admin bool
}

// AuthFunc returns what token allows; known is false for a token that is
// not accepted at all.
type AuthFunc func(token string) (access Access, known bool)

// Job describes a configured scheduled job for the triggers page.
type Job struct {
	Name     string
	Schedule string
	Handler  string
	Disabled bool
}

// Panel is a further table on the triggers page, for parts of the engine
// the console does not know itself (subscribers, for one). LoadFunc
// returns the table's header and rows at each page load.
type Panel struct {
	Title    string
	LoadFunc func(ctx context.Context) (header []string, rows [][]string, err error)
}

// Options holds the optional collaborators of a Console.
type Options struct {
	// Metrics gives the workers' outcomes and the fire lag (nil: the
	// overview says none were recorded).
	Metrics *metrics.Metrics
	// Logger receives failed queries (nil: discard).
	Logger *slog.Logger
	// Clock gives "now" for the ready backlog (nil: the system clock).
	Clock stream.Clock
	// Auth checks tokens (nil: no authentication, as the API without
	// tokens).
	Auth AuthFunc
	// Jobs are the configured scheduled jobs.
	Jobs []Job
	// Panels are shown at the end of the triggers page.
	Panels []Panel
	// Reads is the store of a read replica (database.read_url): every
	// page reads from it; the reset button, and the stream page shown
	// right after a reset, use the store given to New, so that the
	// operator sees the reset (a replica may not have replayed it yet).
	// Nil: everything uses the store.
	Reads Store
}

// Console serves the pages. It is safe for concurrent use.
type Console struct {
	mgr       *trigger.Manager
	store     Store
	reads     Store // opts.Reads, or store
	explainer *explain.Explainer
	opts      Options
	log       *slog.Logger
	clock     stream.Clock
	pages     map[string]*template.Template
	handler   http.Handler
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the console over the engine's manager (trigger definitions
// and counters) and store.
func New(mgr *trigger.Manager, store Store, opts Options) (*Console, error) {
	c := &Console{mgr: mgr, store: store, reads: opts.Reads, opts: opts, log: opts.Logger, clock: opts.Clock}
	if c.reads == nil {
		c.reads = store
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = stream.SystemClock{}
	}
	c.explainer = explain.New(c.reads, mgr, explain.Config{Clock: c.clock})
	c.pages = map[string]*template.Template{}
	for _, name := range []string{"overview", "streams", "stream", "events", "event", "triggers", "login", "problem"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	c.handler = c.routes()
	return c, nil
}

// Handler serves the console's paths (all under Prefix).
func (c *Console) Handler() http.Handler { return c.handler }

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+Prefix+"/login", c.loginForm)
	mux.HandleFunc("POST "+Prefix+"/login", c.login)
	mux.HandleFunc("POST "+Prefix+"/logout", c.logout)
	mux.Handle("GET "+Prefix+"/{$}", c.need(false, c.overview))
	mux.Handle("GET "+Prefix+"/streams", c.need(false, c.streams))
	mux.Handle("GET "+Prefix+"/streams/{id}", c.need(false, c.stream))
	mux.Handle("POST "+Prefix+"/streams/{id}/reset", c.need(true, c.reset))
	mux.Handle("GET "+Prefix+"/events", c.need(false, c.events))
	mux.Handle("GET "+Prefix+"/events/{message_id}", c.need(false, c.event))
	mux.Handle("GET "+Prefix+"/triggers", c.need(false, c.triggers))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			c.problem(w, r, http.StatusNotFound, "No such page: %s %s.", r.Method, r.URL.Path)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// request is one page request: who asks and what they may do.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	access Access
	csrf   string
}

// need checks the token (admin: also admin access) and, on POSTs, the
// CSRF token, then runs h.
func (c *Console) need(admin bool, h func(*request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := &request{w: w, r: r, access: Access{Read: true, Admin: true}}
		if c.opts.Auth != nil {
			token := bearer(r)
			if token == "" {
				c.toLogin(w, r, "")
				return
			}
			a, known := c.opts.Auth(token)
			if !known {
				clearCookie(w, r, TokenCookie)
				c.toLogin(w, r, "unknown")
				return
			}
			rq.access = a
		}
		if !rq.access.Read && !rq.access.Admin {
			c.problem(w, r, http.StatusForbidden, "This token does not allow reading: it needs the read or admin scope.")
			return
		}
		if admin && !rq.access.Admin {
			c.problem(w, r, http.StatusForbidden, "This needs a token with the admin scope.")
			return
		}
		if r.Method == http.MethodPost && !c.csrfOK(r) {
			c.problem(w, r, http.StatusForbidden, "The form's CSRF token is missing or stale: reload the page and try again.")
			return
		}
		rq.csrf = c.csrfToken(w, r)
		h(rq)
	})
}

// bearer returns the token of the Authorization header or the cookie.
func bearer(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	if ck, err := r.Cookie(TokenCookie); err == nil {
		return ck.Value
	}
	return ""
}

func (c *Console) toLogin(w http.ResponseWriter, r *http.Request, why string) {
	if r.Method != http.MethodGet {
		c.problem(w, r, http.StatusUnauthorized, "Log in first.")
		return
	}
	q := "?next=" + url.QueryEscape(r.URL.RequestURI())
	if why != "" {
		q += "&why=" + why
	}
	http.Redirect(w, r, Prefix+"/login"+q, http.StatusSeeOther)
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// csrfToken returns the browser's CSRF value, setting the cookie first
// when it has none.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(CSRFCookie); err == nil && len(ck.Value) == 32 {
		return ck.Value
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	v := hex.EncodeToString(b)
	setCookie(w, r, CSRFCookie, v)
	return v
}

// csrfOK reports whether the posted csrf field equals the cookie.
func (c *Console) csrfOK(r *http.Request) bool {
	ck, err := r.Cookie(CSRFCookie)
	if err != nil || len(ck.Value) != 32 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) == 1
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string
	Prefix string
	CSRF   string
	Access Access
	Auth   bool
	// Notice and Problem are messages shown at the top.
	Notice, Problem string
	Data            any
	Rendered        time.Time
}

func (c *Console) render(rq *request, code int, name, title string, data any, problem string) {
	p := page{
		Title: title, Nav: name, Prefix: Prefix, CSRF: rq.csrf, Access: rq.access, Auth: c.opts.Auth != nil,
		Problem: problem, Data: data, Rendered: c.clock.Now(),
	}
	c.write(rq.w, rq.r, code, name, p)
}

func (c *Console) write(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.log.Error("console: render page", "page", name, "error", err)
		http.Error(w, "render the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; style-src-elem 'self'; style-src-attr 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// problem answers with an error page.
func (c *Console) problem(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	c.write(w, r, code, "problem", page{
		Title: http.StatusText(code), Prefix: Prefix, Auth: c.opts.Auth != nil,
		Problem: fmt.Sprintf(format, args...), Rendered: c.clock.Now(),
	})
}

// failed answers a failed query.
func (c *Console) failed(rq *request, what string, err error) {
	c.log.Warn("console: query failed", "path", rq.r.URL.Path, "error", err)
	code := http.StatusInternalServerError
	if errors.Is(err, db.ErrUnavailable) {
		code = http.StatusServiceUnavailable
	}
	c.problem(rq.w, rq.r, code, "%s: %v", what, err)
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if c.opts.Auth == nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	p := page{Title: "Log in", Nav: "login", Prefix: Prefix, Auth: true, CSRF: c.csrfToken(w, r), Rendered: c.clock.Now(),
		Data: safeNext(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("why") == "unknown" {
		p.Problem = "That token is not accepted."
	}
	c.write(w, r, http.StatusOK, "login", p)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.opts.Auth == nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	if !c.csrfOK(r) {
		c.problem(w, r, http.StatusForbidden, "The form's CSRF token is missing or stale: reload the page and try again.")
		return
	}
	next := safeNext(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	if _, known := c.opts.Auth(token); token == "" || !known {
		p := page{Title: "Log in", Nav: "login", Prefix: Prefix, Auth: true, CSRF: c.csrfToken(w, r), Rendered: c.clock.Now(),
			Data: next, Problem: "That token is not accepted."}
		c.write(w, r, http.StatusUnauthorized, "login", p)
		return
	}
	setCookie(w, r, TokenCookie, token)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if !c.csrfOK(r) {
		c.problem(w, r, http.StatusForbidden, "The form's CSRF token is missing or stale: reload the page and try again.")
		return
	}
	clearCookie(w, r, TokenCookie)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/"
	}
	return next
}
