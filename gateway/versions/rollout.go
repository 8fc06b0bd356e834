package versions

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nimbus-fn/nimbus/rollout"
)

// Rollouts (nimbus rollout) are kept next to the aliases they shift:
//
//	nimbus/functions/<fn>/rollouts/<alias>   record (rollout.Record JSON), status
//
// written with check-and-set on the entry's modify index, which is the
// record's revision on the wire.

func rolloutPath(fn, alias string) string { return fnPath(fn) + "/rollouts/" + alias }

// Rollout returns the rollout of fn's alias and its modify index
// (ErrNotFound if none).
func (s *Store) Rollout(ctx context.Context, fn, alias string) (*rollout.Record, uint64, error) {
	if checkName("function", fn) != nil || !aliasRE.MatchString(alias) {
		return nil, 0, fmt.Errorf("rollout of %s:%s: %w", fn, alias, ErrNotFound)
	}
	e, err := s.b.Get(ctx, rolloutPath(fn, alias))
	if err != nil {
		return nil, 0, fmt.Errorf("rollout of %s:%s: %w", fn, alias, err)
	}
	var r rollout.Record
	if err := json.Unmarshal([]byte(e.Items["record"]), &r); err != nil {
		return nil, 0, fmt.Errorf("rollout of %s:%s: decoding the record: %w", fn, alias, err)
	}
	return &r, e.Index, nil
}

// PutRollout writes the rollout of fn's alias if the entry's modify index
// is cas (0: only if there is none) and returns the new index; ErrConflict
// otherwise. The record must be valid and name fn and alias.
func (s *Store) PutRollout(ctx context.Context, fn, alias string, r *rollout.Record, cas uint64) (uint64, error) {
	if err := checkName("function", fn); err != nil {
		return 0, err
	}
	if !aliasRE.MatchString(alias) {
		return 0, fmt.Errorf("alias name %q: %w", alias, ErrInvalid)
	}
	if r.Function != fn || r.Alias != alias {
		return 0, fmt.Errorf("the record is of %s:%s, not %s:%s: %w", r.Function, r.Alias, fn, alias, ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	p := rolloutPath(fn, alias)
	if err := checkPath(p); err != nil {
		return 0, err
	}
	idx, err := s.b.Put(ctx, p, map[string]string{"record": string(b), "status": string(r.Status)}, cas)
	if err != nil {
		return 0, fmt.Errorf("rollout of %s:%s: %w", fn, alias, err)
	}
	s.logger.Info("rollout recorded", "function", fn, "alias", alias, "version", r.To, "status", string(r.Status), "step", r.Step)
	return idx, nil
}

// DeleteRollout removes the rollout of fn's alias if its modify index is
// cas; ErrConflict otherwise, ErrNotFound if there is none.
func (s *Store) DeleteRollout(ctx context.Context, fn, alias string, cas uint64) error {
	if checkName("function", fn) != nil || !aliasRE.MatchString(alias) {
		return fmt.Errorf("rollout of %s:%s: %w", fn, alias, ErrNotFound)
	}
	if err := s.b.Delete(ctx, rolloutPath(fn, alias), cas); err != nil {
		return fmt.Errorf("rollout of %s:%s: %w", fn, alias, err)
	}
	return nil
}
