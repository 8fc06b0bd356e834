package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// Errors the Store returns.
var (
	// ErrNotFound: the store holds no function of that name.
	ErrNotFound = errors.New("function not found")
	// ErrExists: Create found the function already there.
	ErrExists = errors.New("function already exists")
	// ErrPrecondition: the caller's RevisionId is not the current one.
	ErrPrecondition = errors.New("revision id does not match")
	// ErrContended: another writer kept winning the check-and-set.
	ErrContended = errors.New("function is being updated by another request")
)

// Lambda's state values.
const (
	StatePending  = "Pending"
	StateActive   = "Active"
	StateFailed   = "Failed"
	StateInactive = "Inactive"

	UpdateInProgress = "InProgress"
	UpdateSuccessful = "Successful"
	UpdateFailed     = "Failed"
)

// Function is a function's $LATEST as the management API keeps it.
type Function struct {
	Name string `json:"name"`
	// Spec is $LATEST's configuration in the spec model; its Code names the
	// bundle (Dir in dev mode: the unpacked bundle; URL in a cluster: the
	// artifact store's address) with Checksum "sha256:<CodeSHA256>".
	Spec *specs.Function `json:"spec"`
	// CodeSHA256 is the zip's sha256 (hex) and CodeSize its length.
	CodeSHA256 string `json:"code_sha256"`
	CodeSize   int64  `json:"code_size"`
	// RevisionID changes on every write.
	RevisionID string `json:"revision_id"`
	// Lambda's state fields.
	State                      string `json:"state"`
	StateReason                string `json:"state_reason,omitempty"`
	StateReasonCode            string `json:"state_reason_code,omitempty"`
	LastUpdateStatus           string `json:"last_update_status"`
	LastUpdateStatusReason     string `json:"last_update_status_reason,omitempty"`
	LastUpdateStatusReasonCode string `json:"last_update_status_reason_code,omitempty"`
	// Role is stored and returned; Nimbus does not assume IAM roles.
	Role string `json:"role,omitempty"`
	// LastModified is the time of the last write.
	LastModified time.Time `json:"last_modified"`
	// Applied is the revision the controller last put into service
	// (compiled into jobs, or made runnable in dev mode).
	Applied string `json:"applied,omitempty"`
	// Serving is the configuration of the last revision applied without
	// error: what runs while a newer revision is pending or has failed.
	Serving *specs.Function `json:"serving,omitempty"`
	// URLCreated and URLModified are when the function URL config was
	// created and last changed through the API (zero: never).
	URLCreated  time.Time `json:"url_created,omitzero"`
	URLModified time.Time `json:"url_modified,omitzero"`

	index uint64
}

// Clone returns a deep copy (the spec through its canonical JSON).
func (f *Function) Clone() *Function {
	c := *f
	if f.Spec != nil {
		c.Spec = cloneSpec(f.Spec)
	}
	if f.Serving != nil {
		c.Serving = cloneSpec(f.Serving)
	}
	return &c
}

func cloneSpec(s *specs.Function) *specs.Function {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("cloning the spec of %s: %v", s.Name, err))
	}
	var out specs.Function
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("cloning the spec of %s: %v", s.Name, err))
	}
	out.Dir, out.Pos = s.Dir, s.Pos
	return &out
}

const prefix = versions.Prefix + "functions/"

func entryPath(name string) string { return prefix + name + "/latest" }

// nameRE is Lambda's function name rule (the name part of a function ARN).
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// ValidName reports whether name is a valid function name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// maxCASRetries bounds an unconditional update's retries under contention.
const maxCASRetries = 20

// Store is the function store over a versions Backend.
type Store struct {
	b   versions.Backend
	now func() time.Time
}

// NewStore returns a store on b (versions.Local in dev mode, versions.Nomad
// in a cluster).
func NewStore(b versions.Backend) *Store { return &Store{b: b, now: time.Now} }

func decode(name string, e versions.Entry) (*Function, error) {
	var f Function
	if err := json.Unmarshal([]byte(e.Items["function"]), &f); err != nil {
		return nil, fmt.Errorf("function %s: decoding the stored entry: %w", name, err)
	}
	if f.Spec == nil {
		return nil, fmt.Errorf("function %s: the stored entry has no spec", name)
	}
	f.index = e.Index
	return &f, nil
}

func encode(f *Function) (map[string]string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("function %s: encoding: %w", f.Name, err)
	}
	return map[string]string{"function": string(b)}, nil
}

// Get returns the stored function or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (*Function, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("function %q: %w", name, ErrNotFound)
	}
	e, err := s.b.Get(ctx, entryPath(name))
	if errors.Is(err, versions.ErrNotFound) {
		return nil, fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decode(name, e)
}

// List returns every stored function, sorted by name.
func (s *Store) List(ctx context.Context) ([]*Function, error) {
	paths, err := s.b.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []*Function
	for _, p := range paths {
		name, rest, _ := strings.Cut(strings.TrimPrefix(p, prefix), "/")
		if rest != "latest" {
			continue
		}
		f, err := s.Get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// stamp gives f a new revision and modification time.
func (s *Store) stamp(f *Function) {
	f.RevisionID = uuid.NewString()
	f.LastModified = s.now().UTC().Truncate(time.Millisecond)
}

// Create stores a new function; ErrExists when the name is taken.
func (s *Store) Create(ctx context.Context, f *Function) (*Function, error) {
	f = f.Clone()
	s.stamp(f)
	items, err := encode(f)
	if err != nil {
		return nil, err
	}
	idx, err := s.b.Put(ctx, entryPath(f.Name), items, 0)
	if errors.Is(err, versions.ErrConflict) {
		return nil, fmt.Errorf("function %s: %w", f.Name, ErrExists)
	}
	if err != nil {
		return nil, err
	}
	f.index = idx
	return f, nil
}

// Update applies change to the current entry and writes it with a
// check-and-set. revision, when not empty, must be the current RevisionId
// (ErrPrecondition otherwise). Without one, a lost race re-reads and
// re-applies change. change may return an error to abort; nothing is
// written then.
func (s *Store) Update(ctx context.Context, name, revision string, change func(*Function) error) (*Function, error) {
	for range maxCASRetries {
		cur, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if revision != "" && cur.RevisionID != revision {
			return nil, fmt.Errorf("function %s: %w", name, ErrPrecondition)
		}
		next := cur.Clone()
		if err := change(next); err != nil {
			return nil, err
		}
		s.stamp(next)
		items, err := encode(next)
		if err != nil {
			return nil, err
		}
		idx, err := s.b.Put(ctx, entryPath(name), items, cur.index)
		if errors.Is(err, versions.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		next.index = idx
		return next, nil
	}
	return nil, fmt.Errorf("function %s: %w", name, ErrContended)
}

// SetStatus records the controller's outcome for revision without changing
// the revision id (a status is not a write of the caller's): it is a no-op
// when the entry has moved on to another revision since.
func (s *Store) SetStatus(ctx context.Context, name, revision string, change func(*Function)) error {
	for range maxCASRetries {
		cur, err := s.Get(ctx, name)
		if err != nil {
			return err
		}
		if cur.RevisionID != revision {
			return nil
		}
		next := cur.Clone()
		change(next)
		items, err := encode(next)
		if err != nil {
			return err
		}
		_, err = s.b.Put(ctx, entryPath(name), items, cur.index)
		if errors.Is(err, versions.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("function %s: %w", name, ErrContended)
}

// Delete removes the function's entry; with revision, only if it is current.
func (s *Store) Delete(ctx context.Context, name, revision string) error {
	for range maxCASRetries {
		cur, err := s.Get(ctx, name)
		if err != nil {
			return err
		}
		if revision != "" && cur.RevisionID != revision {
			return fmt.Errorf("function %s: %w", name, ErrPrecondition)
		}
		err = s.b.Delete(ctx, entryPath(name), cur.index)
		if errors.Is(err, versions.ErrConflict) {
			continue
		}
		if errors.Is(err, versions.ErrNotFound) {
			return fmt.Errorf("function %s: %w", name, ErrNotFound)
		}
		return err
	}
	return fmt.Errorf("function %s: %w", name, ErrContended)
}

// References lists the bundles stored functions use (for the artifact
// store's garbage collector).
func (s *Store) References(ctx context.Context) (map[string]bool, error) {
	fns, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(fns))
	for _, f := range fns {
		if f.CodeSHA256 != "" {
			out[f.CodeSHA256] = true
		}
	}
	return out, nil
}
