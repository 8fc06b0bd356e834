// Package schedexpr parses schedule expressions — rate(…), EventBridge
// cron(…) and bare cron expressions — and computes their ticks in UTC.
// Spec validation and the schedule event source both use it, so a spec
// that validates is exactly a schedule the gateway runs. It is a leaf:
// it imports nothing from this module.
//
//   - rate(N unit): unit minute(s), hour(s) or day(s), N a positive whole
//     number (singular or plural accepted for any N). Ticks are aligned to
//     the Unix epoch, so every gateway computes the same ones.
//   - cron(minutes hours day-of-month month day-of-week year): EventBridge
//     syntax; exactly one of day-of-month and day-of-week is "?";
//     day-of-week 1-7 (1 = SUN) or SUN-SAT, with L, nL, n#k; day-of-month
//     L, W, LW; years up to 2099.
//   - A bare cron expression, crontab style (day-of-week 0-7, "?" means
//     "*"): 5 fields, 6 (seconds first) or 7 (seconds first, year last),
//     or @hourly, @daily, @weekly, @monthly, @yearly, @annually.
package schedexpr
