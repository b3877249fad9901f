package workload

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/stream"
)

// DefaultStart is the first day (UTC, time.DateOnly) of a workload whose
// Config.Start is zero.
const DefaultStart = "2014-08-01"

// Limits of a Config.
const (
	MaxInstances = 10_000_000
	MaxDays      = 3660
)

// Config describes a workload.
type Config struct {
	// Instances is the number of compute instances (at least 1).
	Instances int
	// Days is the length of the period in days (at least 1).
	Days int
	// Seed selects the workload: the same Config gives the same output.
	Seed uint64
	// Start is the first day of the period; it is truncated to midnight
	// UTC. Zero: DefaultStart.
	Start time.Time
}

// Validate reports the first field of c that is out of range.
func (c Config) Validate() error {
	switch {
	case c.Instances < 1 || c.Instances > MaxInstances:
		return fmt.Errorf("workload: instances %d out of range [1, %d]", c.Instances, MaxInstances)
	case c.Days < 1 || c.Days > MaxDays:
		return fmt.Errorf("workload: days %d out of range [1, %d]", c.Days, MaxDays)
	}
	return nil
}

func (c Config) start() time.Time {
	if c.Start.IsZero() {
		t, _ := time.Parse(time.DateOnly, DefaultStart) // a valid constant
		return t
	}
	return c.Start.UTC().Truncate(24 * time.Hour)
}

// Notification is one generated notification.
type Notification struct {
	MessageID string
	EventType string
	Timestamp time.Time
	// Body is the notification as one line of JSON (no newline). The
	// caller may keep it; the generator does not touch it again.
	Body []byte
}

// ErrStop may be returned by the function given to Generate to end the
// generation early; Generate then returns nil.
var ErrStop = errors.New("workload: stop")

// Generate produces the notifications of cfg in timestamp order and calls
// fn with each. It stops at the first error fn returns and returns it
// (nil for ErrStop).
func Generate(cfg Config, fn func(Notification) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g := newGenerator(cfg)
	for day := 0; day <= cfg.Days; day++ {
		for _, n := range g.day(day) {
			if err := fn(n); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

// Notifications returns all notifications of cfg in timestamp order.
func Notifications(cfg Config) ([]Notification, error) {
	var out []Notification
	err := Generate(cfg, func(n Notification) error {
		out = append(out, n)
		return nil
	})
	return out, err
}

// Events returns the events the notifications of cfg distill into with d,
// in timestamp order. A notification d drops or fails on is an error
// naming it: the generator is meant to produce only valid notifications
// for the definitions it is used with.
func Events(cfg Config, d *distiller.Distiller) ([]stream.Event, error) {
	var out []stream.Event
	err := Generate(cfg, func(n Notification) error {
		ev, err := distill(d, n)
		if err != nil {
			return err
		}
		out = append(out, ev)
		return nil
	})
	return out, err
}

func distill(d *distiller.Distiller, n Notification) (stream.Event, error) {
	ev, _, err := d.Distill(n.Body)
	if err != nil {
		return stream.Event{}, fmt.Errorf("workload: distill %s notification %s: %w", n.EventType, n.MessageID, err)
	}
	return ev, nil
}

// WriteNotifications writes the notifications of cfg to w as JSON lines
// and returns how many it wrote.
func WriteNotifications(w io.Writer, cfg Config) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	count := 0
	err := Generate(cfg, func(n Notification) error {
		bw.Write(n.Body)
		count++
		return bw.WriteByte('\n')
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return count, fmt.Errorf("workload: write notifications: %w", err)
	}
	return count, nil
}

// WriteEvents distills the notifications of cfg with d and writes the
// events to w in the event JSON encoding, one per line. It returns how
// many it wrote.
func WriteEvents(w io.Writer, cfg Config, d *distiller.Distiller) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	count := 0
	err := Generate(cfg, func(n Notification) error {
		ev, err := distill(d, n)
		if err != nil {
			return err
		}
		b, err := ev.MarshalJSON()
		if err != nil {
			return fmt.Errorf("workload: encode event %s: %w", ev.MessageID, err)
		}
		bw.Write(b)
		count++
		return bw.WriteByte('\n')
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return count, fmt.Errorf("workload: write events: %w", err)
	}
	return count, nil
}

// ---- the model

type flavor struct {
	id                                int
	name, flavorID                    string
	memoryMB, diskGB, rootGB, ephemGB int
	vcpus                             int
	weight                            int // relative frequency
}

var flavors = [...]flavor{
	{id: 2, name: "m1.tiny", flavorID: "1", memoryMB: 512, diskGB: 1, rootGB: 1, vcpus: 1, weight: 3},
	{id: 5, name: "m1.small", flavorID: "2", memoryMB: 2048, diskGB: 20, rootGB: 20, vcpus: 1, weight: 5},
	{id: 1, name: "m1.medium", flavorID: "3", memoryMB: 4096, diskGB: 40, rootGB: 40, vcpus: 2, weight: 4},
	{id: 4, name: "m1.large", flavorID: "4", memoryMB: 8192, diskGB: 80, rootGB: 80, vcpus: 4, weight: 2},
	{id: 3, name: "m1.xlarge", flavorID: "5", memoryMB: 16384, diskGB: 160, rootGB: 160, ephemGB: 0, vcpus: 8, weight: 1},
}

type image struct {
	ref, arch, distro, version string
	container, disk            string
	minDisk                    string
}

var images = [...]image{
	{ref: "5e1f0f8a-8d4c-4b5a-9e6f-1a2b3c4d5e6f", arch: "x64", distro: "org.ubuntu", version: "14.04", container: "bare", disk: "qcow2", minDisk: "20"},
	{ref: "0b7c3e1d-2f4a-4c6b-8d9e-0f1a2b3c4d5e", arch: "x64", distro: "org.ubuntu", version: "12.04", container: "bare", disk: "qcow2", minDisk: "10"},
	{ref: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", arch: "x86_64", distro: "com.redhat", version: "6.5", container: "ovf", disk: "vhd", minDisk: "40"},
	{ref: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", arch: "x86_64", distro: "org.centos", version: "7", container: "bare", disk: "raw", minDisk: "20"},
	{ref: "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910", arch: "x64", distro: "org.debian", version: "7.6", container: "bare", disk: "qcow2", minDisk: "10"},
}

type tenant struct {
	id, user, project, userName string
}

type instance struct {
	id, name, reservation string
	tenant                int
	host                  int
	flavor                int
	image                 int
	createdAt             time.Time // create.start
	launchedAt            time.Time // zero until create.end
	createDay             int       // day of create.start; -1 before the period
	deleteDay             int       // day of delete.start; -1: not deleted
	deletedAt             time.Time // set at delete.end
}

// alive reports whether in existed at some time of day.
func (in *instance) alive(day int) bool {
	return in.createDay <= day && (in.deleteDay < 0 || in.deleteDay >= day)
}

type generator struct {
	cfg       Config
	start     time.Time
	r         *rand.Rand
	tenants   []tenant
	hosts     int
	instances []instance
	seq       int
}

// pending is a notification before encoding, with its position in
// generation order (the tie-breaker of the sort).
type pending struct {
	at  time.Time
	seq int
	n   notification
}

func newGenerator(cfg Config) *generator {
	g := &generator{
		cfg:   cfg,
		start: cfg.start(),
		r:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
	g.tenants = make([]tenant, max(1, cfg.Instances/8))
	for i := range g.tenants {
		g.tenants[i] = tenant{
			id: g.hex32(), user: g.hex32(),
			project: fmt.Sprintf("project-%d", i+1), userName: fmt.Sprintf("user-%d", i+1),
		}
	}
	g.hosts = max(2, cfg.Instances/25)
	totalWeight := 0
	for _, f := range flavors {
		totalWeight += f.weight
	}
	g.instances = make([]instance, cfg.Instances)
	for i := range g.instances {
		in := &g.instances[i]
		in.id = g.uuid()
		in.name = fmt.Sprintf("vm-%06d", i+1)
		in.reservation = fmt.Sprintf("r-%08x", g.r.Uint32())
		in.tenant = g.r.IntN(len(g.tenants))
		in.host = g.r.IntN(g.hosts)
		in.flavor = pickFlavor(g.r.IntN(totalWeight))
		in.image = g.r.IntN(len(images))
		in.deleteDay = -1
		if g.r.IntN(2) == 0 {
			// Launched before the period.
			in.createDay = -1
			in.createdAt = g.start.Add(-time.Duration(1+g.r.IntN(90))*24*time.Hour + g.between(0, 24*time.Hour))
			in.launchedAt = in.createdAt.Add(g.between(15*time.Second, 90*time.Second)).Truncate(time.Second)
			if g.r.IntN(4) == 0 {
				in.deleteDay = g.r.IntN(cfg.Days)
			}
		} else {
			in.createDay = g.r.IntN(cfg.Days)
			in.createdAt = g.day0(in.createDay).Add(g.between(20*time.Minute, 23*time.Hour))
			if g.r.IntN(4) == 0 && in.createDay+1 < cfg.Days {
				in.deleteDay = in.createDay + 1 + g.r.IntN(cfg.Days-in.createDay-1)
			}
		}
	}
	return g
}

func pickFlavor(n int) int {
	for i, f := range flavors {
		if n < f.weight {
			return i
		}
		n -= f.weight
	}
	return len(flavors) - 1
}

func (g *generator) day0(day int) time.Time { return g.start.Add(time.Duration(day) * 24 * time.Hour) }

// between is a random duration in [lo, hi) with microsecond precision.
func (g *generator) between(lo, hi time.Duration) time.Duration {
	span := int64((hi - lo) / time.Microsecond)
	return lo + time.Duration(g.r.Int64N(span))*time.Microsecond
}

func (g *generator) hex32() string {
	return fmt.Sprintf("%016x%016x", g.r.Uint64(), g.r.Uint64())
}

// uuid is a random (version 4) UUID from the seeded source.
func (g *generator) uuid() string {
	hi, lo := g.r.Uint64(), g.r.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// day returns the notifications of one day in timestamp order: the
// exists of the day before, then the actions of the day (day == Days has
// only the exists of the last day).
func (g *generator) day(day int) []Notification {
	var batch []pending
	if day > 0 {
		audit := day - 1
		for i := range g.instances {
			in := &g.instances[i]
			if !in.alive(audit) {
				continue
			}
			at := g.day0(day).Add(g.between(5*time.Second, 20*time.Minute))
			batch = append(batch, g.exists(in, audit, at))
		}
	}
	if day < g.cfg.Days {
		for i := range g.instances {
			in := &g.instances[i]
			if in.alive(day) {
				batch = g.actions(batch, in, day)
			}
		}
	}
	slices.SortStableFunc(batch, func(a, b pending) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.seq, b.seq))
	})
	out := make([]Notification, len(batch))
	for i, p := range batch {
		body, err := json.Marshal(&p.n)
		if err != nil {
			// Every field is a string, number, map of strings or nil.
			panic("workload: encode notification: " + err.Error())
		}
		out[i] = Notification{MessageID: p.n.MessageID, EventType: p.n.EventType, Timestamp: p.at, Body: body}
	}
	return out
}

type action int

const (
	actUpdate action = iota + 1
	actResize
	actRebuild
)

// actions appends the notifications of one instance on one day.
func (g *generator) actions(batch []pending, in *instance, day int) []pending {
	lo := g.day0(day).Add(20 * time.Minute)
	hi := g.day0(day).Add(23 * time.Hour)
	if in.createDay == day {
		batch = g.create(batch, in)
		lo = in.launchedAt.Add(time.Minute)
	}
	type planned struct {
		at time.Time
		a  action
	}
	var plan []planned
	if g.r.IntN(5) == 0 {
		plan = append(plan, planned{a: actUpdate})
	}
	if g.r.IntN(25) == 0 {
		plan = append(plan, planned{a: actResize})
	}
	if g.r.IntN(50) == 0 {
		plan = append(plan, planned{a: actRebuild})
	}
	if lo.After(hi) {
		lo = hi
	}
	for i := range plan {
		plan[i].at = lo.Add(g.between(0, hi.Sub(lo)+time.Microsecond))
	}
	slices.SortStableFunc(plan, func(a, b planned) int { return a.at.Compare(b.at) })
	next := lo
	for _, p := range plan {
		at := p.at
		if at.Before(next) {
			at = next.Add(g.between(time.Second, 5*time.Second))
		}
		switch p.a {
		case actUpdate:
			batch, next = g.update(batch, in, at)
		case actResize:
			batch, next = g.resize(batch, in, at)
		case actRebuild:
			batch, next = g.rebuild(batch, in, at)
		}
	}
	if in.deleteDay == day {
		at := lo.Add(g.between(0, hi.Sub(lo)+time.Microsecond))
		if at.Before(next) {
			at = next.Add(g.between(time.Second, 30*time.Second))
		}
		batch = g.delete(batch, in, at)
	}
	return batch
}

// request starts a request: its id and its context timestamp.
type request struct {
	id string
	at time.Time
}

func (g *generator) request(at time.Time) request {
	return request{id: "req-" + g.uuid(), at: at.Add(-g.between(50*time.Millisecond, 800*time.Millisecond))}
}

func (g *generator) add(batch []pending, in *instance, eventType string, at time.Time, req request, state, desc string, edit func(*payload)) []pending {
	n := g.envelope(in, eventType, at, req)
	n.Payload = g.payload(in, state, desc)
	if edit != nil {
		edit(&n.Payload)
	}
	g.seq++
	return append(batch, pending{at: at, seq: g.seq, n: n})
}

func (g *generator) create(batch []pending, in *instance) []pending {
	at := in.createdAt
	req := g.request(at)
	batch = g.add(batch, in, "compute.instance.create.start", at, req, "building", "", nil)
	end := at.Add(g.between(15*time.Second, 90*time.Second))
	in.launchedAt = end.Add(-g.between(200*time.Millisecond, 1500*time.Millisecond)).Truncate(time.Second)
	return g.add(batch, in, "compute.instance.create.end", end, req, "active", "", nil)
}

func (g *generator) update(batch []pending, in *instance, at time.Time) ([]pending, time.Time) {
	req := g.request(at)
	oldTask, newTask := "powering-off", "None"
	if g.r.IntN(2) == 0 {
		oldTask, newTask = "rebooting", "None"
	}
	batch = g.add(batch, in, "compute.instance.update", at, req, "active", "", func(p *payload) {
		p.OldState = ptr("active")
		p.OldTaskState = ptr(oldTask)
		p.NewTaskState = ptr(newTask)
	})
	return batch, at
}

func (g *generator) resize(batch []pending, in *instance, at time.Time) ([]pending, time.Time) {
	req := g.request(at)
	newFlavor := (in.flavor + 1 + g.r.IntN(len(flavors)-1)) % len(flavors)
	nf := flavors[newFlavor]
	prep := func(p *payload) {
		p.NewInstanceType = ptr(nf.name)
		p.NewInstanceTypeID = ptr(nf.id)
	}
	batch = g.add(batch, in, "compute.instance.resize.prep.start", at, req, "active", "resize_prep", prep)
	at = at.Add(g.between(200*time.Millisecond, 3*time.Second))
	batch = g.add(batch, in, "compute.instance.resize.prep.end", at, req, "active", "resize_prep", prep)
	at = at.Add(g.between(time.Second, 10*time.Second))
	batch = g.add(batch, in, "compute.instance.resize.start", at, req, "active", "resize_migrating", nil)
	if g.r.IntN(3) == 0 {
		in.host = g.r.IntN(g.hosts)
	}
	at = at.Add(g.between(10*time.Second, 3*time.Minute))
	batch = g.add(batch, in, "compute.instance.resize.end", at, req, "active", "resize_migrated", nil)
	in.flavor = newFlavor
	at = at.Add(g.between(time.Second, 20*time.Second))
	batch = g.add(batch, in, "compute.instance.finish_resize.start", at, req, "resized", "resize_finish", nil)
	at = at.Add(g.between(2*time.Second, 40*time.Second))
	batch = g.add(batch, in, "compute.instance.finish_resize.end", at, req, "resized", "", nil)
	return batch, at
}

func (g *generator) rebuild(batch []pending, in *instance, at time.Time) ([]pending, time.Time) {
	req := g.request(at)
	in.image = (in.image + 1 + g.r.IntN(len(images)-1)) % len(images)
	batch = g.add(batch, in, "compute.instance.rebuild.start", at, req, "active", "rebuilding", nil)
	at = at.Add(g.between(20*time.Second, 3*time.Minute))
	batch = g.add(batch, in, "compute.instance.rebuild.end", at, req, "active", "", nil)
	return batch, at
}

func (g *generator) delete(batch []pending, in *instance, at time.Time) []pending {
	req := g.request(at)
	batch = g.add(batch, in, "compute.instance.delete.start", at, req, "active", "deleting", nil)
	end := at.Add(g.between(2*time.Second, 30*time.Second))
	terminated := end.Add(-g.between(time.Second, 2*time.Second)).Truncate(time.Second)
	in.deletedAt = end.Add(-g.between(100*time.Millisecond, 900*time.Millisecond)).Truncate(time.Second)
	return g.add(batch, in, "compute.instance.delete.end", end, req, "deleted", "", func(p *payload) {
		p.TerminatedAt = isoTime(terminated)
	})
}

func (g *generator) exists(in *instance, audit int, at time.Time) pending {
	begin := g.day0(audit)
	req := g.request(at)
	n := g.envelope(in, "compute.instance.exists", at, req)
	state := "active"
	if !in.deletedAt.IsZero() && in.deletedAt.Before(g.day0(audit+1)) {
		state = "deleted"
	}
	n.Payload = g.payload(in, state, "")
	n.Payload.AuditPeriodBeginning = isoTime(begin)
	n.Payload.AuditPeriodEnding = isoTime(g.day0(audit + 1))
	n.Payload.Bandwidth = map[string]bandwidth{
		"public": {In: g.r.Int64N(1 << 32), Out: g.r.Int64N(1 << 31)},
	}
	g.seq++
	return pending{at: at, seq: g.seq, n: n}
}

// ---- encoding

const (
	envelopeTime = "2006-01-02 15:04:05.000000"
	payloadTime  = "2006-01-02T15:04:05.000000"
	createdTime  = "2006-01-02 15:04:05+00:00"
)

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(payloadTime)
}

func ptr[T any](v T) *T { return &v }

type notification struct {
	ContextIsAdmin       bool     `json:"_context_is_admin"`
	ContextProjectID     string   `json:"_context_project_id"`
	ContextProjectName   string   `json:"_context_project_name"`
	ContextReadDeleted   string   `json:"_context_read_deleted"`
	ContextRemoteAddress string   `json:"_context_remote_address"`
	ContextRequestID     string   `json:"_context_request_id"`
	ContextRoles         []string `json:"_context_roles"`
	ContextTenant        string   `json:"_context_tenant"`
	ContextTimestamp     string   `json:"_context_timestamp"`
	ContextUser          string   `json:"_context_user"`
	ContextUserID        string   `json:"_context_user_id"`
	ContextUserName      string   `json:"_context_user_name"`
	EventType            string   `json:"event_type"`
	MessageID            string   `json:"message_id"`
	Payload              payload  `json:"payload"`
	Priority             string   `json:"priority"`
	PublisherID          string   `json:"publisher_id"`
	Timestamp            string   `json:"timestamp"`
}

type bandwidth struct {
	In  int64 `json:"bw_in"`
	Out int64 `json:"bw_out"`
}

type payload struct {
	AccessIPv4           *string              `json:"access_ip_v4"`
	AccessIPv6           *string              `json:"access_ip_v6"`
	Architecture         *string              `json:"architecture"`
	AuditPeriodBeginning string               `json:"audit_period_beginning,omitempty"`
	AuditPeriodEnding    string               `json:"audit_period_ending,omitempty"`
	AvailabilityZone     *string              `json:"availability_zone"`
	Bandwidth            map[string]bandwidth `json:"bandwidth,omitempty"`
	CellName             string               `json:"cell_name"`
	CreatedAt            string               `json:"created_at"`
	DeletedAt            string               `json:"deleted_at"`
	DiskGB               int                  `json:"disk_gb"`
	DisplayName          string               `json:"display_name"`
	EphemeralGB          int                  `json:"ephemeral_gb"`
	Host                 string               `json:"host"`
	Hostname             string               `json:"hostname"`
	ImageMeta            map[string]string    `json:"image_meta"`
	ImageRefURL          string               `json:"image_ref_url"`
	InstanceFlavorID     string               `json:"instance_flavor_id"`
	InstanceID           string               `json:"instance_id"`
	InstanceType         string               `json:"instance_type"`
	InstanceTypeID       int                  `json:"instance_type_id"`
	KernelID             string               `json:"kernel_id"`
	LaunchedAt           string               `json:"launched_at"`
	MemoryMB             int                  `json:"memory_mb"`
	Metadata             map[string]string    `json:"metadata"`
	NewInstanceType      *string              `json:"new_instance_type,omitempty"`
	NewInstanceTypeID    *int                 `json:"new_instance_type_id,omitempty"`
	NewTaskState         *string              `json:"new_task_state,omitempty"`
	Node                 string               `json:"node"`
	OldState             *string              `json:"old_state,omitempty"`
	OldTaskState         *string              `json:"old_task_state,omitempty"`
	OSType               *string              `json:"os_type"`
	Progress             string               `json:"progress"`
	RamdiskID            string               `json:"ramdisk_id"`
	ReservationID        string               `json:"reservation_id"`
	RootGB               int                  `json:"root_gb"`
	State                string               `json:"state"`
	StateDescription     string               `json:"state_description"`
	TenantID             string               `json:"tenant_id"`
	TerminatedAt         string               `json:"terminated_at"`
	UserID               string               `json:"user_id"`
	VCPUs                int                  `json:"vcpus"`
}

func (g *generator) hostName(h int) string { return fmt.Sprintf("host-%d", h+1) }

func (g *generator) envelope(in *instance, eventType string, at time.Time, req request) notification {
	t := g.tenants[in.tenant]
	return notification{
		ContextProjectID:     t.id,
		ContextProjectName:   t.project,
		ContextReadDeleted:   "no",
		ContextRemoteAddress: fmt.Sprintf("10.%d.%d.%d", in.tenant/65536%256, in.tenant/256%256, in.tenant%256),
		ContextRequestID:     req.id,
		ContextRoles:         []string{"_member_"},
		ContextTenant:        t.id,
		ContextTimestamp:     req.at.UTC().Format(payloadTime),
		ContextUser:          t.user,
		ContextUserID:        t.user,
		ContextUserName:      t.userName,
		EventType:            eventType,
		MessageID:            g.uuid(),
		Priority:             "INFO",
		PublisherID:          "compute." + g.hostName(in.host) + ".example.com",
		Timestamp:            at.UTC().Format(envelopeTime),
	}
}

func (g *generator) payload(in *instance, state, desc string) payload {
	f := flavors[in.flavor]
	im := images[in.image]
	t := g.tenants[in.tenant]
	host := g.hostName(in.host)
	return payload{
		CreatedAt:   in.createdAt.UTC().Format(createdTime),
		DeletedAt:   isoTime(in.deletedAt),
		DiskGB:      f.diskGB,
		DisplayName: in.name,
		EphemeralGB: f.ephemGB,
		Host:        host,
		Hostname:    in.name,
		ImageMeta: map[string]string{
			"base_image_ref":                 im.ref,
			"container_format":               im.container,
			"disk_format":                    im.disk,
			"min_disk":                       im.minDisk,
			"min_ram":                        "0",
			"org.openstack__1__architecture": im.arch,
			"org.openstack__1__os_distro":    im.distro,
			"org.openstack__1__os_version":   im.version,
		},
		ImageRefURL:      "http://glance.example.com:9292/images/" + im.ref,
		InstanceFlavorID: f.flavorID,
		InstanceID:       in.id,
		InstanceType:     f.name,
		InstanceTypeID:   f.id,
		LaunchedAt:       isoTime(in.launchedAt),
		MemoryMB:         f.memoryMB,
		Metadata:         map[string]string{},
		Node:             host + ".example.com",
		ReservationID:    in.reservation,
		RootGB:           f.rootGB,
		State:            state,
		StateDescription: desc,
		TenantID:         t.id,
		UserID:           t.user,
		VCPUs:            f.vcpus,
	}
}
