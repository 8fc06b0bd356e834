// Package strategy is the nimbus-target strategy: target tracking on
// provisioned-concurrency utilisation, with a provisioned floor, a ceiling,
// scheduled windows that raise the floor, and scale-in slower than
// scale-out.
//
// The check's metric is the utilisation the nimbus APM answers by default
// (in-flight invocations on provisioned environments / provisioned
// environments, in [0, 1]). Since environments = count × environments per
// instance, count × utilisation / target = in-flight / (per-instance ×
// target): the instance count that would put utilisation at the target,
// without the strategy knowing how many environments an instance hosts.
//
//   - Scale out when the newest point is above target: ceil(count × u / target).
//   - Scale in only when every point in the query window is below
//     target × scale_in_threshold (0.9 by default, as AWS does), to
//     ceil(count × max(points) / target), removing at most max_scale_in
//     instances when that is set.
//   - Otherwise keep the count.
//   - Then clamp to [floor, max], where floor is the largest of `min` and
//     the `min` of every schedule window open now; max wins over the floor.
//   - At count 0 there are no provisioned environments and no utilisation:
//     only the floor applies (on-demand capacity serves the traffic).
//
// The direction is always set (None when the count stays), because the
// autoscaler rejects an unspecified direction and enforces the policy's min
// only when a strategy asks for a change. Config keys and defaults are in
// autoscaler/policy; every value arrives as a string.
//
// It imports autoscaler/policy and autoscaler/sdk, plus hashicorp/cronexpr
// and hclog.
package strategy
