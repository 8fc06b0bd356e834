package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/sigv4"
)

// Lock rule: Sessions.mu guards sessions and limits; nothing else is taken
// while it is held.

const (
	// CookieName is the session cookie.
	CookieName = "nimbus_console"
	// CSRFHeader carries the session's CSRF token on every request other
	// than GET and HEAD.
	CSRFHeader = "X-Nimbus-CSRF"
	// CookiePath scopes the session cookie: the browser sends it only to
	// /console/…, so the console reaches the gateway's API through
	// GatewayPrefix and no other path (a path-based function URL under
	// /url/ above all) ever receives it.
	CookiePath = "/console"
)

// Key is one access key a session may stand for.
type Key struct {
	ID     string
	Secret string
	// Scope is "admin" or "invoke" (empty: admin).
	Scope string
}

// SessionConfig configures the session layer.
type SessionConfig struct {
	// Keys are the gateway's access keys. None: the gateway does not
	// authenticate (dev mode) and no login is needed.
	Keys []Key
	// Mode is "dev" or "cluster", as the session endpoint reports it.
	Mode string
	// Region and AccountID are reported to the console.
	Region    string
	AccountID string
	// IdleTimeout ends a session unused this long. Default: 30m.
	IdleTimeout time.Duration
	// MaxAge ends a session this long after login however busy. Default: 12h.
	MaxAge time.Duration
	// MaxSessions bounds the live sessions; a login over the bound ends the
	// least recently used one. Default: 1000.
	MaxSessions int
	// LoginBurst attempts per client are allowed at once, then one every
	// LoginInterval. Defaults: 5 and 10s.
	LoginBurst    int
	LoginInterval time.Duration
	// Now is the clock (nil: time.Now).
	Now    func() time.Time
	Logger hclog.Logger
}

// maxLimiters bounds the per-client login buckets kept at once.
const maxLimiters = 10000

// Sessions is the server-side session store, the login/logout/session
// endpoints and the sigv4.Sessions hook the gateway's verifier consults.
type Sessions struct {
	cfg    SessionConfig
	keys   map[string]Key
	logger hclog.Logger
	// shared, when set (UseShared, before serving), keeps the sessions
	// instead of the in-memory map, so that every gateway behind one
	// address knows them.
	shared SharedStore

	mu       sync.Mutex
	sessions map[[32]byte]*session // by sha256 of the session id
	limits   map[string]*bucket    // by client address
}

type session struct {
	key      Key
	csrf     string
	created  time.Time
	lastSeen time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

var _ sigv4.Sessions = (*Sessions)(nil)

// StoredSession is a session as a SharedStore keeps it: the access key's
// id (never its secret), the CSRF token and the times.
type StoredSession struct {
	AccessKeyID string    `json:"accessKeyId"`
	CSRF        string    `json:"csrf"`
	Created     time.Time `json:"created"`
	LastSeen    time.Time `json:"lastSeen"`
}

// SharedStore keeps sessions where every gateway sees them. Keys are the
// hex sha256 of the session id: the id itself is never stored. The store
// bounds its size itself (a Put over the bound fails).
type SharedStore interface {
	Get(ctx context.Context, key string) (StoredSession, bool, error)
	Put(ctx context.Context, key string, s StoredSession) error
	Delete(ctx context.Context, key string) error
}

// UseShared keeps sessions in st from now on; call it before serving.
func (s *Sessions) UseShared(st SharedStore) { s.shared = st }

// Timeouts the session layer's users need (a shared store's entry TTL).
func (s *Sessions) Timeouts() (idle, maxAge time.Duration) { return s.cfg.IdleTimeout, s.cfg.MaxAge }

// NewSessions builds the session layer.
func NewSessions(cfg SessionConfig) *Sessions {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1000
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = 5
	}
	if cfg.LoginInterval <= 0 {
		cfg.LoginInterval = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	keys := make(map[string]Key, len(cfg.Keys))
	for _, k := range cfg.Keys {
		keys[k.ID] = k
	}
	return &Sessions{cfg: cfg, keys: keys, logger: cfg.Logger.Named("console"),
		sessions: map[[32]byte]*session{}, limits: map[string]*bucket{}}
}

// AuthRequired reports whether the gateway has access keys.
func (s *Sessions) AuthRequired() bool { return len(s.keys) > 0 }

// Len is the number of live sessions (tests).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func sessionErr(code, msg string) error { return &sigv4.Error{Code: code, Message: msg} }

// Identify implements sigv4.Sessions.
func (s *Sessions) Identify(r *http.Request) (*sigv4.Identity, bool, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, false, nil
	}
	sess, err := s.lookup(r.Context(), c.Value)
	if err != nil {
		return nil, true, sessionErr("ServiceException", "reading the console session: "+err.Error())
	}
	if sess == nil {
		return nil, true, sessionErr(sigv4.CodeUnrecognizedClient, "The console session is unknown or has expired: log in again.")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
			return nil, true, sessionErr("AccessDeniedException", "A request with a console session must carry the session's "+CSRFHeader+" header.")
		}
	}
	return &sigv4.Identity{AccessKeyID: sess.key.ID}, true, nil
}

// touchEvery is how stale a shared session's last use may be before a use
// writes it again (a write per request would be wasteful).
func (s *Sessions) touchEvery() time.Duration { return min(time.Minute, s.cfg.IdleTimeout/10) }

// lookup answers a copy of the live session id names (touching it), or nil.
func (s *Sessions) lookup(ctx context.Context, id string) (*session, error) {
	h := sha256.Sum256([]byte(id))
	now := s.cfg.Now()
	if s.shared != nil {
		key := hex.EncodeToString(h[:])
		st, ok, err := s.shared.Get(ctx, key)
		if err != nil || !ok {
			return nil, err
		}
		k, known := s.keys[st.AccessKeyID]
		sess := &session{key: k, csrf: st.CSRF, created: st.Created, lastSeen: st.LastSeen}
		if !known || s.expiredLocked(sess, now) {
			_ = s.shared.Delete(ctx, key)
			return nil, nil
		}
		if now.Sub(st.LastSeen) >= s.touchEvery() {
			st.LastSeen = now
			if err := s.shared.Put(ctx, key, st); err != nil {
				s.logger.Warn("recording a console session's use", "error", err)
			}
		}
		return sess, nil
	}
	return s.lookupMem(h, now), nil
}

// lookupMem is lookup in the in-memory map.
func (s *Sessions) lookupMem(h [32]byte, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[h]
	if !ok {
		return nil
	}
	if s.expiredLocked(sess, now) {
		delete(s.sessions, h)
		return nil
	}
	sess.lastSeen = now
	cp := *sess
	return &cp
}

func (s *Sessions) expiredLocked(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) >= s.cfg.IdleTimeout || now.Sub(sess.created) >= s.cfg.MaxAge
}

// create stores a new session for k and answers its id.
func (s *Sessions) create(ctx context.Context, k Key) (string, *session, error) {
	id, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	now := s.cfg.Now()
	sess := &session{key: k, csrf: csrf, created: now, lastSeen: now}
	if s.shared != nil {
		h := sha256.Sum256([]byte(id))
		err := s.shared.Put(ctx, hex.EncodeToString(h[:]), StoredSession{AccessKeyID: k.ID, CSRF: csrf, Created: now, LastSeen: now})
		if err != nil {
			return "", nil, err
		}
		return id, sess, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.evictLocked(now)
	}
	s.sessions[sha256.Sum256([]byte(id))] = sess
	cp := *sess
	return id, &cp, nil
}

// evictLocked drops expired sessions and, if still full, the least
// recently used one.
func (s *Sessions) evictLocked(now time.Time) {
	var lru [32]byte
	var lruSeen time.Time
	found := false
	for h, sess := range s.sessions {
		if s.expiredLocked(sess, now) {
			delete(s.sessions, h)
			continue
		}
		if !found || sess.lastSeen.Before(lruSeen) {
			lru, lruSeen, found = h, sess.lastSeen, true
		}
	}
	if len(s.sessions) >= s.cfg.MaxSessions && found {
		delete(s.sessions, lru)
	}
}

func (s *Sessions) remove(ctx context.Context, id string) error {
	h := sha256.Sum256([]byte(id))
	if s.shared != nil {
		return s.shared.Delete(ctx, hex.EncodeToString(h[:]))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, h)
	return nil
}

// randomToken is 256 random bits, URL-safe base64.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// allowLogin takes one login attempt from client's bucket; when empty it
// answers how long until the next attempt is allowed.
func (s *Sessions) allowLogin(client string) (bool, time.Duration) {
	now := s.cfg.Now()
	burst := float64(s.cfg.LoginBurst)
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.limits[client]
	if !ok {
		if len(s.limits) >= maxLimiters {
			// Forget the buckets that have refilled; they hold no state.
			for c, o := range s.limits {
				if o.tokens+now.Sub(o.at).Seconds()/s.cfg.LoginInterval.Seconds() >= burst {
					delete(s.limits, c)
				}
			}
			if len(s.limits) >= maxLimiters {
				return false, s.cfg.LoginInterval
			}
		}
		b = &bucket{tokens: burst, at: now}
		s.limits[client] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()/s.cfg.LoginInterval.Seconds())
	b.at = now
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) * float64(s.cfg.LoginInterval))
		return false, wait
	}
	b.tokens--
	return true, 0
}

// SessionInfo is the session endpoint's answer (and login's).
type SessionInfo struct {
	Mode          string `json:"mode"`
	AuthRequired  bool   `json:"authRequired"`
	Authenticated bool   `json:"authenticated"`
	AccessKeyID   string `json:"accessKeyId"`
	Scope         string `json:"scope"`
	CSRFToken     string `json:"csrfToken"`
	Region        string `json:"region"`
	AccountID     string `json:"accountId"`
}

func (s *Sessions) info(sess *session) SessionInfo {
	in := SessionInfo{Mode: s.cfg.Mode, AuthRequired: s.AuthRequired(), Region: s.cfg.Region, AccountID: s.cfg.AccountID}
	if !in.AuthRequired {
		// Without access keys every route is open: the console may do
		// everything an admin key could.
		in.Scope = "admin"
	}
	if sess != nil {
		in.Authenticated = true
		in.AccessKeyID = sess.key.ID
		in.Scope = sess.key.Scope
		if in.Scope == "" {
			in.Scope = "admin"
		}
		in.CSRFToken = sess.csrf
	}
	return in
}

// ServeSession answers GET /console/api/session.
func (s *Sessions) ServeSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeMessage(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	var sess *session
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" && s.AuthRequired() {
		sess, err = s.lookup(r.Context(), c.Value)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "reading the console session: "+err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, s.info(sess))
}

// maxLoginBody bounds a login request.
const maxLoginBody = 8 << 10

// ServeLogin answers POST /console/api/login.
func (s *Sessions) ServeLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeMessage(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !s.AuthRequired() {
		writeMessage(w, http.StatusBadRequest, "this gateway has no access keys: the console needs no login")
		return
	}
	client := clientAddr(r)
	if ok, wait := s.allowLogin(client); !ok {
		secs := int(wait.Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeMessage(w, http.StatusTooManyRequests, "too many login attempts: try again later")
		return
	}
	var body struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxLoginBody))
	if err := dec.Decode(&body); err != nil {
		writeMessage(w, http.StatusBadRequest, "the body must be JSON {\"accessKeyId\",\"secretAccessKey\"}")
		return
	}
	if body.AccessKeyID == "" || body.SecretAccessKey == "" {
		writeMessage(w, http.StatusBadRequest, "accessKeyId and secretAccessKey are required")
		return
	}
	k, ok := s.keys[body.AccessKeyID]
	// Compare hashes so that neither the secret's length nor whether the
	// key exists shows in the time taken.
	want := sha256.Sum256([]byte(k.Secret))
	got := sha256.Sum256([]byte(body.SecretAccessKey))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 || !ok {
		s.logger.Info("console login refused", "client", client)
		writeMessage(w, http.StatusUnauthorized, "the access key id or secret is not valid")
		return
	}
	id, sess, err := s.create(r.Context(), k)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "creating a session: "+err.Error())
		return
	}
	s.logger.Info("console login", "access_key", k.ID, "client", client)
	if r.TLS == nil && !isLoopback(client) {
		// The secret crossed the network in the clear (unless a proxy in
		// front terminated TLS): say so where an operator looks.
		s.logger.Warn("console login over plain HTTP from another host: serve the gateway over TLS (or behind a TLS proxy)", "client", client)
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: CookiePath, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.cfg.MaxAge / time.Second),
	})
	writeJSON(w, http.StatusOK, s.info(sess))
}

// ServeLogout answers POST /console/api/logout: the session (if any) is
// deleted and the cookie cleared. A live session must show its CSRF token.
func (s *Sessions) ServeLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeMessage(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		sess, err := s.lookup(r.Context(), c.Value)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "reading the console session: "+err.Error())
			return
		}
		if sess != nil {
			got := r.Header.Get(CSRFHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
				writeMessage(w, http.StatusForbidden, "logout must carry the session's "+CSRFHeader+" header")
				return
			}
			if err := s.remove(r.Context(), c.Value); err != nil {
				writeMessage(w, http.StatusInternalServerError, "deleting the console session: "+err.Error())
				return
			}
			s.logger.Info("console logout", "access_key", sess.key.ID)
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: CookiePath, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientAddr is the peer's IP (the rate limit's key). Forwarding headers
// are not trusted: a client could name itself anything.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeMessage answers the console API's error shape {"message"}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}
