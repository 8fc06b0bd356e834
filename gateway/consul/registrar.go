package consul

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Agent is the part of the Consul agent API the Registrar uses (*api.Agent).
type Agent interface {
	ServiceRegisterOpts(service *api.AgentServiceRegistration, opts api.ServiceRegisterOpts) error
	ServiceDeregisterOpts(serviceID string, q *api.QueryOptions) error
	ServicesWithFilterOpts(filter string, q *api.QueryOptions) (map[string]*api.AgentService, error)
}

var _ Agent = (*api.Agent)(nil)

// Service meta keys the Registrar writes. Consul meta keys allow only
// letters, digits, '-' and '_', so these use '_' where job meta uses '.'.
const (
	// MetaGateway marks every registration with the owning gateway's service
	// ID; resync lists the agent's services by it.
	MetaGateway = "nimbus_gateway"
	// MetaFunction is the exact function name of a URL service.
	MetaFunction = "nimbus_function"
	// MetaQualifier, MetaAuth and MetaInvokeMode copy the URL config.
	MetaQualifier  = "nimbus_url_qualifier"
	MetaAuth       = "nimbus_url_auth"
	MetaInvokeMode = "nimbus_url_invoke_mode"
)

// MeshTag marks the gateway's Connect-native registration
// (RegistrarConfig.MeshService).
const MeshTag = "mesh"

// DefaultHealthPath is the gateway's health endpoint (gateway/server.HealthPath).
const DefaultHealthPath = "/nimbus/health"

// RegistrarConfig configures a Registrar. Zero values take the defaults noted.
type RegistrarConfig struct {
	// ServiceName is the gateway's Consul service. Default "nimbus-gateway".
	ServiceName string
	// ServiceID identifies this gateway's registration on its agent.
	// Default "<ServiceName>-<Address>-<Port>".
	ServiceID string
	// Address and Port are where other machines (and the agent's health
	// check) reach this gateway. Required.
	Address string
	Port    int
	// Tags and Meta are added to the gateway service.
	Tags []string
	Meta map[string]string
	// HealthPath is the HTTP check's path. Default DefaultHealthPath.
	HealthPath string
	// CheckInterval and CheckTimeout of the HTTP check. Defaults 10s and 2s;
	// Consul runs checks at most once a second.
	CheckInterval time.Duration
	CheckTimeout  time.Duration
	// DeregisterCriticalAfter lets Consul drop the registrations of a gateway
	// that died without deregistering once its check stayed critical this
	// long. Default 10m; Consul enforces at least 1m.
	DeregisterCriticalAfter time.Duration
	// URLSuffix makes a function URL's service name: "<fn><URLSuffix>".
	// Default "-url".
	URLSuffix string
	// URLTags are added to every function URL service.
	URLTags []string
	// MeshAddress and MeshPort, when MeshPort is set, are the gateway's
	// mesh listener (connect enabled): each function URL service is then
	// registered Connect-native there, so mesh callers resolve "<fn>-url"
	// through /v1/health/connect and dial the mTLS listener, and Envoy
	// sidecars can name it as an upstream. Without, URL services point at
	// the plain listener as before (clusters without Connect). The gateway
	// service itself stays on the plain listener either way: its health
	// check, artifact downloads and plain clients use that port.
	// MeshAddress defaults to Address.
	MeshAddress string
	MeshPort    int
	// MeshService, with MeshPort, is the gateway's own mesh identity (the
	// connect service, "nimbus-gateway" by default): it is registered a
	// second time, Connect-native at the mesh listener (ID
	// "<ServiceID>:mesh", tag MeshTag, an alias check on the gateway), so
	// that mesh callers of the Invoke API find it through
	// /v1/health/connect/<MeshService> and intentions to it apply. Plain
	// clients listing /v1/health/service/<name> skip instances whose
	// Service.Connect.Native is set (the autoscaler's APM does).
	MeshService string
	// ResyncInterval is how often Run re-checks that the agent holds exactly
	// the registrations it should (an agent restart or an operator can drop
	// them). Default 30s.
	ResyncInterval time.Duration
}

// Defaults fills empty fields.
func (c *RegistrarConfig) Defaults() {
	if c.ServiceName == "" {
		c.ServiceName = "nimbus-gateway"
	}
	if c.ServiceID == "" && c.Address != "" && c.Port > 0 {
		c.ServiceID = c.ServiceName + "-" + c.Address + "-" + strconv.Itoa(c.Port)
	}
	if c.HealthPath == "" {
		c.HealthPath = DefaultHealthPath
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = 10 * time.Second
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = 2 * time.Second
	}
	if c.DeregisterCriticalAfter <= 0 {
		c.DeregisterCriticalAfter = 10 * time.Minute
	}
	if c.URLSuffix == "" {
		c.URLSuffix = "-url"
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = 30 * time.Second
	}
	if c.MeshPort > 0 && c.MeshAddress == "" {
		c.MeshAddress = c.Address
	}
}

var (
	metaKey   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	urlSuffix = regexp.MustCompile(`^[A-Za-z0-9-]*$`)
)

// Validate reports every problem (after Defaults).
func (c *RegistrarConfig) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address is required"))
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is outside 1..65535", c.Port))
	}
	if c.MeshPort < 0 || c.MeshPort > 65535 {
		errs = append(errs, fmt.Errorf("mesh port %d is outside 1..65535", c.MeshPort))
	}
	if c.MeshService != "" && c.MeshPort == 0 {
		errs = append(errs, fmt.Errorf("mesh service %q needs a mesh port", c.MeshService))
	}
	if c.MeshService != "" && !serviceName.MatchString(c.MeshService) {
		errs = append(errs, fmt.Errorf("mesh service name %q is not a DNS label", c.MeshService))
	}
	if !serviceName.MatchString(c.ServiceName) {
		errs = append(errs, fmt.Errorf("service name %q is not a DNS label", c.ServiceName))
	}
	if !strings.HasPrefix(c.HealthPath, "/") {
		errs = append(errs, fmt.Errorf("health path %q must start with /", c.HealthPath))
	}
	if !urlSuffix.MatchString(c.URLSuffix) {
		errs = append(errs, fmt.Errorf("url suffix %q may hold only letters, digits and -", c.URLSuffix))
	}
	for k := range c.Meta {
		if !metaKey.MatchString(k) || strings.HasPrefix(k, "consul-") {
			errs = append(errs, fmt.Errorf("meta key %q: Consul allows letters, digits, - and _ (no consul- prefix)", k))
		}
	}
	if c.CheckTimeout > c.CheckInterval {
		errs = append(errs, fmt.Errorf("check timeout %s is longer than the interval %s", c.CheckTimeout, c.CheckInterval))
	}
	return errors.Join(errs...)
}

// URLFunction is one function with a URL config, as registered in Consul.
type URLFunction struct {
	// Function is the exact function name.
	Function string
	// Qualifier the URL invokes ("$LATEST" or an alias), Auth ("NONE",
	// "AWS_IAM") and InvokeMode ("BUFFERED", "RESPONSE_STREAM"), as in the
	// spec's url block; they travel in service meta.
	Qualifier  string
	Auth       string
	InvokeMode string
}

// Registrar keeps this gateway's Consul registrations: the gateway service
// and one service per function URL. Register, SetURLFunctions, Run's resync
// and Deregister may be called from any goroutine; they are serialised.
type Registrar struct {
	agent  Agent
	cfg    RegistrarConfig
	logger hclog.Logger

	mu         sync.Mutex // serialises reconciles; guards the fields below
	registered bool       // between Register and Deregister
	urls       map[string]URLFunction
}

// NewRegistrar validates cfg (after Defaults) and returns a Registrar; it
// registers nothing until Register.
func NewRegistrar(agent Agent, cfg RegistrarConfig, logger hclog.Logger) (*Registrar, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consul registrar config: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Registrar{agent: agent, cfg: cfg, logger: logger.Named("consul-registrar"), urls: map[string]URLFunction{}}, nil
}

// ServiceID is the gateway's registration ID.
func (r *Registrar) ServiceID() string { return r.cfg.ServiceID }

// URLServiceName is the Consul service name of fn's URL.
func (r *Registrar) URLServiceName(fn string) string { return URLServiceName(fn, r.cfg.URLSuffix) }

// Register registers the gateway and the current function URLs.
func (r *Registrar) Register(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.registered = true
	return r.reconcileLocked(ctx)
}

// SetURLFunctions makes the registered function URL services exactly fns
// (registered right away when the gateway is registered, else at Register).
func (r *Registrar) SetURLFunctions(ctx context.Context, fns []URLFunction) error {
	urls := make(map[string]URLFunction, len(fns))
	for _, f := range fns {
		if f.Function == "" {
			return errors.New("url function without a name")
		}
		urls[f.Function] = f
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.urls = urls
	if !r.registered {
		return nil
	}
	return r.reconcileLocked(ctx)
}

// Deregister removes the function URL services and then the gateway.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.registered = false
	return r.reconcileLocked(ctx)
}

// Run re-checks the registrations every ResyncInterval until ctx is done.
func (r *Registrar) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		err := r.reconcileLocked(ctx)
		r.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			r.logger.Warn("resyncing consul registrations", "error", err)
		}
	}
}

// reconcileLocked compares what the agent holds for this gateway with what
// it should hold and registers or deregisters the difference. URL services
// are removed before, and registered after, the gateway, so an alias check
// never points at a missing service.
func (r *Registrar) reconcileLocked(ctx context.Context) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	have, err := r.agent.ServicesWithFilterOpts(fmt.Sprintf("Meta.%s == %q", MetaGateway, r.cfg.ServiceID), q)
	if err != nil {
		if r.registered {
			return fmt.Errorf("listing agent services: %w", err)
		}
		// Shutting down: still try to remove what this gateway registers.
		have = map[string]*api.AgentService{r.cfg.ServiceID: {}}
		if m := r.meshRegistration(); m != nil {
			have[m.ID] = &api.AgentService{}
		}
		for _, f := range r.urls {
			have[r.cfg.ServiceID+":"+r.URLServiceName(f.Function)] = &api.AgentService{}
		}
		return errors.Join(fmt.Errorf("listing agent services: %w", err), r.applyLocked(ctx, have))
	}
	return r.applyLocked(ctx, have)
}

// applyLocked registers and deregisters the difference between have (the
// agent's registrations of this gateway) and what it should hold.
func (r *Registrar) applyLocked(ctx context.Context, have map[string]*api.AgentService) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	want := map[string]*api.AgentServiceRegistration{}
	if r.registered {
		g := r.gatewayRegistration()
		want[g.ID] = g
		if m := r.meshRegistration(); m != nil {
			want[m.ID] = m
		}
		for _, f := range r.urls {
			u := r.urlRegistration(f)
			want[u.ID] = u
		}
	}
	var errs []error
	// Removals: URL services first, the gateway last.
	var gone []string
	for id := range have {
		if _, ok := want[id]; !ok {
			gone = append(gone, id)
		}
	}
	slices.SortFunc(gone, func(a, b string) int {
		return cmpBool(a == r.cfg.ServiceID, b == r.cfg.ServiceID) // gateway sorts last
	})
	for _, id := range gone {
		if err := r.agent.ServiceDeregisterOpts(id, q); err != nil {
			errs = append(errs, fmt.Errorf("deregistering %s: %w", id, err))
			continue
		}
		r.logger.Info("deregistered service", "service_id", id)
	}
	// Additions and changes: the gateway first.
	ids := slices.Sorted(maps.Keys(want))
	slices.SortStableFunc(ids, func(a, b string) int {
		return cmpBool(b == r.cfg.ServiceID, a == r.cfg.ServiceID) // gateway sorts first
	})
	for _, id := range ids {
		reg := want[id]
		if cur, ok := have[id]; ok && sameService(cur, reg) {
			continue
		}
		opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
		if err := r.agent.ServiceRegisterOpts(reg, opts); err != nil {
			errs = append(errs, fmt.Errorf("registering %s: %w", id, err))
			continue
		}
		log := r.logger.With("service_id", id, "service", reg.Name)
		if f := reg.Meta[MetaFunction]; f != "" {
			log = log.With("function", f)
		}
		log.Info("registered service")
	}
	return errors.Join(errs...)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

func (r *Registrar) gatewayRegistration() *api.AgentServiceRegistration {
	meta := maps.Clone(r.cfg.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[MetaGateway] = r.cfg.ServiceID
	return &api.AgentServiceRegistration{
		ID:      r.cfg.ServiceID,
		Name:    r.cfg.ServiceName,
		Address: r.cfg.Address,
		Port:    r.cfg.Port,
		Tags:    slices.Clone(r.cfg.Tags),
		Meta:    meta,
		Checks: api.AgentServiceChecks{{
			CheckID:                        r.cfg.ServiceID + ":http",
			Name:                           "gateway health",
			HTTP:                           "http://" + net.JoinHostPort(r.cfg.Address, strconv.Itoa(r.cfg.Port)) + r.cfg.HealthPath,
			Method:                         "GET",
			Interval:                       r.cfg.CheckInterval.String(),
			Timeout:                        r.cfg.CheckTimeout.String(),
			DeregisterCriticalServiceAfter: r.cfg.DeregisterCriticalAfter.String(),
		}},
	}
}

// meshRegistration is the gateway's Connect-native registration at the
// mesh listener, or nil without MeshService.
func (r *Registrar) meshRegistration() *api.AgentServiceRegistration {
	if r.cfg.MeshService == "" || r.cfg.MeshPort == 0 {
		return nil
	}
	id := r.cfg.ServiceID + ":" + MeshTag
	return &api.AgentServiceRegistration{
		ID:      id,
		Name:    r.cfg.MeshService,
		Address: r.cfg.MeshAddress,
		Port:    r.cfg.MeshPort,
		Tags:    []string{MeshTag},
		Meta:    map[string]string{MetaGateway: r.cfg.ServiceID},
		Connect: &api.AgentServiceConnect{Native: true},
		// Healthy while the gateway's own check passes.
		Checks: api.AgentServiceChecks{{
			CheckID:      id + ":alias",
			Name:         "gateway alias",
			AliasService: r.cfg.ServiceID,
		}},
	}
}

func (r *Registrar) urlRegistration(f URLFunction) *api.AgentServiceRegistration {
	name := r.URLServiceName(f.Function)
	id := r.cfg.ServiceID + ":" + name
	tags := append([]string{"function=" + f.Function}, r.cfg.URLTags...)
	meta := map[string]string{MetaGateway: r.cfg.ServiceID, MetaFunction: f.Function}
	for k, v := range map[string]string{MetaQualifier: f.Qualifier, MetaAuth: f.Auth, MetaInvokeMode: f.InvokeMode} {
		if v != "" {
			meta[k] = v
		}
	}
	reg := &api.AgentServiceRegistration{
		ID:      id,
		Name:    name,
		Address: r.cfg.Address,
		Port:    r.cfg.Port,
		Tags:    tags,
		Meta:    meta,
		// The URL is as healthy as the gateway serving it.
		Checks: api.AgentServiceChecks{{
			CheckID:      id + ":alias",
			Name:         "gateway alias",
			AliasService: r.cfg.ServiceID,
		}},
	}
	if r.cfg.MeshPort > 0 {
		reg.Address, reg.Port = r.cfg.MeshAddress, r.cfg.MeshPort
		reg.Connect = &api.AgentServiceConnect{Native: true}
	}
	return reg
}

// sameService reports whether the agent's copy matches the registration in
// everything the Registrar sets (checks are derived from the same fields).
func sameService(cur *api.AgentService, want *api.AgentServiceRegistration) bool {
	native := func(c *api.AgentServiceConnect) bool { return c != nil && c.Native }
	return cur.Service == want.Name && cur.Address == want.Address && cur.Port == want.Port &&
		slices.Equal(cur.Tags, want.Tags) && maps.Equal(cur.Meta, want.Meta) && native(cur.Connect) == native(want.Connect)
}

var serviceName = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])$`)

// URLServiceName is "<fn><suffix>" when that is a DNS label (so
// "<name>.service.consul" resolves); otherwise characters other than
// letters, digits and '-' become '-' and 8 hex digits of the function name's
// SHA-256 keep distinct functions apart, within 63 characters. The exact
// name is always in the service's function tag and meta.
func URLServiceName(fn, suffix string) string {
	name := fn + suffix
	if serviceName.MatchString(name) {
		return name
	}
	clean := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '-'
	}, fn)
	sum := sha256.Sum256([]byte(fn))
	tail := "-" + hex.EncodeToString(sum[:4]) + suffix
	if len(clean) > 63-len(tail) {
		clean = clean[:63-len(tail)]
	}
	clean = strings.Trim(clean, "-")
	if clean == "" {
		return strings.TrimPrefix(tail, "-")
	}
	return clean + tail
}
