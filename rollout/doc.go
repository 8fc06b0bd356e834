// Package rollout shifts a Lambda alias from one published version to
// another step by step, as CodeDeploy's Lambda deployments do, and rolls it
// back when the new version's error rate (or the function's throttles)
// passes a threshold. It is the engine behind `nimbus rollout`.
//
// The package holds three things:
//
//   - the plan: CodeDeploy's predefined configurations by name
//     (ParseStrategy) or custom percentages and an interval (ParseSteps),
//     and the alias each step writes (Plan.AliasAt);
//   - the Record: the rollout as the gateway stores it (under
//     /nimbus/v1/functions/{fn}/rollouts/{alias}), so that a rollout
//     survives the CLI that drives it and can be resumed or aborted; the
//     gateway validates it with Record.Validate;
//   - the Runner: the state machine that drives a Record through a
//     Gateway (the management API) and reads health from the gateways'
//     Prometheus pages (Scraper).
//
// Health is the delta of the new version's counters since its step began,
// summed over every metrics page given (each gateway counts only what it
// served): errors are nimbus_errors_total of every kind (function and
// platform), the rate is errors / (invocations + platform errors), and a
// step is judged only once that denominator reaches MinInvocations.
// Throttles are nimbus_throttles_total of the function (the metric has no
// version label).
//
// Statuses: Running → Succeeded | RolledBack | Aborted. Every alias write
// carries the RevisionId of the alias as the rollout last saw it; an alias
// whose revision differs is still taken over when its content is one this
// rollout writes (its original or one of its steps: a CLI that died between
// the alias write and the record write), and otherwise left alone: a
// concurrent edit is reported, never clobbered.
//
// It is a leaf: it imports nothing from this module (the gateway imports it
// for the Record contract).
package rollout
